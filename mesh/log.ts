/**
 * Structured logging for the mesh, the same shape as the relay's (relay/config.ts), so one
 * logger serves a whole process. Never pass secrets, tickets' signatures or bearer headers.
 */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
