/**
 * Structured logging: one shape for the relay, the mesh and the command line (cli/log.ts writes
 * it as text or JSON), so one logger serves a whole process. Never pass secrets, tickets'
 * signatures or bearer headers.
 */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
