import { z } from 'zod';

/** The gateway's settings, all from the environment (the ECS task definition sets them). */
const int = (min: number, fallback: number) =>
  z
    .string()
    .regex(/^\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min))
    .optional()
    .transform((value) => value ?? fallback);

export const configSchema = z.object({
  PORT: int(1, 8080),
  PROVIDER_KEYS_SECRET_ID: z.string().min(1, 'expected the provider key pool secret ARN or name'),
  CLIENTS_SECRET_ID: z.string().min(1, 'expected the client records secret ARN or name'),
  CLIENT_KEY_PEPPER: z.string().min(32, 'expected the pepper secret, 32 characters at least'),
  SECRETS_POLL_INTERVAL_SECONDS: int(1, 30),
  POOL_STRATEGY: z.enum(['weighted-round-robin', 'least-in-flight']).default('weighted-round-robin'),
  MAX_ATTEMPTS: int(1, 3),
  UPSTREAM_TIMEOUT_MS: int(100, 60_000),
  MAX_BODY_BYTES: int(1024, 4 * 1024 * 1024),
  REDIS_HOST: z.string().optional(),
  REDIS_PORT: int(1, 6379),
  REDIS_TLS: z.enum(['true', 'false']).default('false'),
  REDIS_PASSWORD: z.string().optional(),
  SHUTDOWN_DRAIN_SECONDS: int(0, 25),
  AWS_REGION: z.string().default('us-east-1'),
});

export type GatewayConfig = z.infer<typeof configSchema>;

/** Parses the environment, or throws one message naming every bad variable and what it expects. */
export function loadConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const result = configSchema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  throw new Error(`invalid gateway configuration: ${problems.join('; ')}`);
}
