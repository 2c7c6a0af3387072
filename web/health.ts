/**
 * GET /health, as llama.cpp's server answers it: 200 only while the node runs, 503 otherwise
 * (docs/http-api.md#runtime): `loading` while it starts, `off`, `stopping`, or `failed` with the
 * reason its start failed.
 */

export type HealthStatus = "ok" | "loading" | "off" | "stopping" | "failed";
export type HealthState = HealthStatus | { status: HealthStatus; reason?: string | null };

export function healthStatus(state: HealthState): { status: HealthStatus; reason: string | null } {
  return typeof state === "string"
    ? { status: state, reason: null }
    : { status: state.status, reason: state.reason ?? null };
}

const MESSAGES: Record<Exclude<HealthStatus, "ok">, string> = {
  loading: "Loading model",
  off: "This node is off: start it from /ui or POST /api/node/start",
  stopping: "This node is stopping",
  failed: "The node failed to start",
};

export function healthRoute(state: () => HealthState) {
  return function health(): Response {
    const { status, reason } = healthStatus(state());
    if (status === "ok") return Response.json({ status: "ok" });
    return Response.json(
      {
        status,
        ...(reason !== null ? { reason } : {}),
        error: {
          message: reason ?? MESSAGES[status],
          type: "unavailable_error",
          code: "unavailable",
        },
      },
      { status: 503 },
    );
  };
}
