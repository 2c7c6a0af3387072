/** What one engine measured on one model. */
export interface Measurement {
  engine: string;
  promptTokens: number;
  prefillTokensPerSecond: number;
  decodeTokens: number;
  decodeTokensPerSecond: number;
  loadMs: number;
}

/** How much work one run does. */
export interface RunPlan {
  promptTokens: number[]; // token ids (BOS first); wllama gets them back as text
  promptText: string;
  decodeTokens: number;
}
