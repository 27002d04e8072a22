import { z } from 'zod';
import { parseAllowedNetworks } from './provider-address';

/** An unset variable and an empty one mean the same: the default (ECS passes empty strings through). */
const blankAsUnset = (value: unknown) => (value === '' ? undefined : value);

const int = (min: number, max: number, fallback: number) =>
  z.preprocess(
    blankAsUnset,
    z
      .string()
      .regex(/^\d+$/, `expected a whole number from ${min} to ${max}`)
      .transform(Number)
      .pipe(z.number().int().min(min, `expected ${min} at least`).max(max, `expected ${max} at most`))
      .optional()
      .transform((value) => value ?? fallback),
  );

const required = (what: string) =>
  z.preprocess(blankAsUnset, z.string({ error: `required: ${what}` }).min(1, `required: ${what}`));

const oneOf = <T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) =>
  z.preprocess(blankAsUnset, z.enum(values, { error: `expected one of ${values.join(', ')}` }).default(fallback));

/**
 * The gateway's settings, all from the environment (the ECS task definition sets them; the Redis
 * password arrives through ECS secret injection, and the pepper is read from its secret at run time). Names and defaults are documented in
 * gateway/README.md.
 */
export const configSchema = z.object({
  PORT: int(1, 65_535, 8080),
  PROVIDER_KEYS_SECRET_ID: required('the provider key pool secret ARN or name'),
  CLIENTS_SECRET_ID: required('the client records secret ARN or name'),
  PEPPER_SECRET_ID: required('the client key pepper secret ARN or name'),
  REHASH_SECRET_ID: required('the client key rehash secret ARN or name'),
  SECRETS_POLL_INTERVAL_SECONDS: int(1, 3600, 30),
  POOL_STRATEGY: oneOf(['weighted-round-robin', 'least-in-flight'] as const, 'weighted-round-robin'),
  MAX_ATTEMPTS: int(1, 10, 3),
  UPSTREAM_TIMEOUT_MS: int(100, 600_000, 60_000),
  MAX_BODY_BYTES: int(1024, 64 * 1024 * 1024, 4 * 1024 * 1024),
  REDIS_HOST: z.preprocess(blankAsUnset, z.string().optional()),
  REDIS_PORT: int(1, 65_535, 6379),
  REDIS_TLS: oneOf(['true', 'false'] as const, 'false'),
  REDIS_USERNAME: z.preprocess(blankAsUnset, z.string().optional()),
  REDIS_PASSWORD: z.preprocess(blankAsUnset, z.string().optional()),
  SHUTDOWN_DRAIN_SECONDS: int(0, 3600, 25),
  HEADERS_TIMEOUT_MS: int(100, 120_000, 10_000),
  BODY_TIMEOUT_MS: int(100, 600_000, 30_000),
  IDLE_TIMEOUT_MS: int(100, 600_000, 65_000),
  SCREEN_INLINE_BYTES: int(0, 64 * 1024 * 1024, 64 * 1024),
  SCREEN_BUDGET_MS: int(10, 60_000, 2000),
  SCREEN_WORKERS: int(1, 16, 1),
  SCREEN_QUEUE: int(1, 10_000, 32),
  PROVIDER_ALLOWED_PRIVATE_CIDRS: z.preprocess(
    blankAsUnset,
    z
      .string()
      .optional()
      .superRefine((value, context) => {
        try {
          parseAllowedNetworks(value);
        } catch (error) {
          context.addIssue({
            code: 'custom',
            message: `expected comma-separated private CIDRs: ${(error as Error).message}`,
          });
        }
      }),
  ),
  PROVIDER_PUBLIC_ADDRESSES: oneOf(['allow', 'refuse'] as const, 'allow'),
  AWS_REGION: required('the AWS region (ECS sets it)'),
});

export type GatewayConfig = z.infer<typeof configSchema>;

/** Parses the environment, or throws one message naming every bad variable and what it expects. */
export function loadConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const result = configSchema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  throw new Error(`invalid gateway configuration: ${problems.join('; ')}`);
}
