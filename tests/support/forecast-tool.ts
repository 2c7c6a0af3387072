/**
 * The function tests offer a model to call: a city and a day count under bounds the grammar must
 * keep (a length, an integer range, an enum), and no other property.
 */
export const FORECAST_FUNCTION = {
  name: "get_forecast",
  description: "The weather forecast for a city",
  parameters: {
    type: "object" as const,
    properties: {
      city: { type: "string", maxLength: 12 },
      days: { type: "integer", minimum: 1, maximum: 7 },
      unit: { enum: ["C", "F"] },
    } as Record<string, Record<string, unknown>>,
    required: ["city", "days"],
    additionalProperties: false as const,
  },
};
