/** GET /health, as llama.cpp's server answers it: 200 when ready, 503 while the model loads. */

export type HealthState = "ok" | "loading" | "failed";

export function healthRoute(state: () => HealthState) {
  return function health(): Response {
    const now = state();
    if (now === "ok") return Response.json({ status: "ok" });
    return Response.json(
      {
        status: now,
        error: {
          message: now === "loading" ? "Loading model" : "The model failed to load",
          type: "unavailable_error",
          code: "unavailable",
        },
      },
      { status: 503 },
    );
  };
}
