/** An error the user can act on: what went wrong and what to do. Never carries a secret value. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Turns an AWS SDK error into a CliError naming what failed, without echoing request parameters. */
export function awsError(action: string, error: unknown): CliError {
  const name = (error as { name?: string })?.name ?? 'Error';
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(String((error as Error)?.message))) {
    return new CliError(
      `${action}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`,
    );
  }
  if (name === 'AccessDeniedException' || name === 'AccessDenied')
    return new CliError(`${action}: access denied (${name})`);
  return new CliError(`${action}: ${name}`);
}
