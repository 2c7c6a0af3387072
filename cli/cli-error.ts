/** A mistake in what the user typed: reported without a stack, exit status 2. */
export class CliError extends Error {}
