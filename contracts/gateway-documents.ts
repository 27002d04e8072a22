/**
 * The gateway's stored documents, each one JSON secret in Secrets Manager under the stack's secrets key:
 * the provider key pool and the client records, which the operator CLI writes and the gateway reads, and
 * the client key rehashes, which the gateway writes after a pepper rotation (contracts/client-keys.ts).
 * This module is the contract between the gateway, the CLI and the rotation function: change it only
 * with all three in step.
 */
import { z } from 'zod';

/** Providers the gateway can forward to. `custom` is any OpenAI-compatible base URL. */
export const PROVIDERS = ['openai', 'anthropic', 'azure-openai', 'custom'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** Guardrail detectors; `custom:<name>` entries come from `customDetectors`. */
export const BUILT_IN_DETECTORS = [
  'credit_card',
  'my_number',
  'email',
  'phone',
  'aws_access_key',
  'private_key',
] as const;
export type BuiltInDetector = (typeof BUILT_IN_DETECTORS)[number];
export const GUARDRAIL_ACTIONS = ['block', 'redact', 'log'] as const;
export type GuardrailAction = (typeof GUARDRAIL_ACTIONS)[number];

/** The APIs the gateway serves, as allow-lists name them. */
export const APIS = ['chat', 'completions', 'embeddings', 'messages', 'count_tokens'] as const;
export type Api = (typeof APIS)[number];

const id = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/, 'an id is 1-32 characters: a lowercase letter, then lowercase letters, digits or -');

/** A Secrets Manager version id (a UUID, or the ClientRequestToken a rotation used). */
const versionId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a Secrets Manager version id');

/** One provider API key. `key` is the only secret field in the document. */
export const providerKeySchema = z.strictObject({
  id,
  key: z.string().min(8).max(512),
  /** Share of requests relative to the other healthy keys of the provider. */
  weight: z.number().int().min(1).max(1000).default(1),
  /** An operator's switch (`dify-aws keys disable`); the gateway's own health state is never stored here. */
  enabled: z.boolean().default(true),
  /** ISO 8601 timestamp written by the CLI, for `keys list`; the gateway ignores it. */
  addedAt: z.string().optional(),
});
export type ProviderKey = z.infer<typeof providerKeySchema>;

export const providerSchema = z.strictObject({
  /**
   * Base URL, e.g. https://api.openai.com; for azure-openai the resource endpoint. https only: a key
   * never crosses a network in clear. Private, loopback and link-local addresses are refused by the
   * gateway unless its deployment allows a private network (PROVIDER_ALLOWED_PRIVATE_CIDRS).
   */
  baseUrl: z
    .url({ protocol: /^https$/, error: 'expected an https:// URL (a provider key is never sent in clear)' })
    .refine((url) => !/^https:\/\/[^/]*@/.test(url), 'a base URL may not carry a user name or password')
    .refine((url) => !/[?#]/.test(url), 'a base URL may not carry a query or a fragment'),
  /** Model ids served by this provider. A request's `model` picks the provider; ids must not repeat across providers. */
  models: z.array(z.string().min(1).max(200)).min(1),
  /** azure-openai only: the api-version query parameter. */
  apiVersion: z.string().optional(),
  /** azure-openai only: model id -> deployment name (default: the model id). */
  deployments: z.record(z.string(), z.string()).optional(),
  keys: z.array(providerKeySchema).default([]),
});
export type ProviderConfig = z.infer<typeof providerSchema>;

/** The provider key pool secret (`<stack>/llm-gateway/provider-keys`). */
export const providerPoolSchema = z.strictObject({
  version: z.literal(1),
  providers: z.partialRecord(z.enum(PROVIDERS), providerSchema),
});
export type ProviderPool = z.infer<typeof providerPoolSchema>;

/** One client of the gateway (Dify, or another internal caller). */
export const clientSchema = z.strictObject({
  id,
  /** Hex HMAC-SHA256 of the whole client key, keyed with the pepper secret. The key itself is never stored. */
  keyHash: z.string().regex(/^[0-9a-f]{64}$/),
  /**
   * The pepper secret's version `keyHash` was made under (the CLI sets it). Absent on records made
   * before peppers rotated: the gateway then tries the current and the previous pepper.
   */
  pepperVersionId: versionId.optional(),
  /** Source networks allowed to use this key (IPv4 or IPv6 CIDRs). */
  allowedCidrs: z.array(z.string()).min(1),
  /** Model ids this client may use; `*` allows every configured model. */
  allowedModels: z.array(z.string().min(1)).min(1),
  requestsPerMinute: z.number().int().min(1),
  tokensPerMinute: z.number().int().min(1),
  /** Action per detector; a detector not listed uses `defaultGuardrailAction`. */
  guardrails: z.record(z.string(), z.enum(GUARDRAIL_ACTIONS)).default({}),
  defaultGuardrailAction: z.enum(GUARDRAIL_ACTIONS).default('block'),
  /** Requests of this client one gateway replica works on at once; more get 429. */
  maxInFlight: z.number().int().min(1).max(10_000).default(64),
  /** What this client may send beyond the gateway's default allow-lists (policy.ts). */
  forwarding: z
    .strictObject({
      /** Extra top-level body fields per API, e.g. { "chat": ["store"] }. */
      fields: z.partialRecord(z.enum(APIS), z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/))).default({}),
      /** Extra `anthropic-beta` values. */
      anthropicBetas: z.array(z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/)).default([]),
      /** Extra tool types (a provider-side tool such as Anthropic's `web_search_20250305`). */
      toolTypes: z.array(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/)).default([]),
    })
    .default({ fields: {}, anthropicBetas: [], toolTypes: [] }),
  disabled: z.boolean().default(false),
  createdAt: z.string().optional(),
});
export type ClientRecord = z.infer<typeof clientSchema>;

/** A configurable regex detector, named `custom:<name>` in policies and audit lines. */
export const customDetectorSchema = z.strictObject({
  name: id,
  pattern: z.string().min(1).max(1000),
  flags: z
    .string()
    .regex(/^[imsu]*$/)
    .default(''),
});
export type CustomDetector = z.infer<typeof customDetectorSchema>;

/** The client records secret (`<stack>/llm-gateway/clients`). */
export const clientsDocumentSchema = z.strictObject({
  version: z.literal(1),
  clients: z.array(clientSchema).default([]),
  customDetectors: z.array(customDetectorSchema).default([]),
});
export type ClientsDocument = z.infer<typeof clientsDocumentSchema>;

/**
 * A client's key hash made again under a newer pepper by the gateway, at the key's first successful
 * use after a pepper rotation. It applies only while `from` is still the record's `keyHash` (a new key
 * from `dify-aws clients rotate` makes it stale) and `pepperVersionId` is a pepper the gateway holds.
 */
export const rehashSchema = z.strictObject({
  from: z.string().regex(/^[0-9a-f]{64}$/),
  to: z.string().regex(/^[0-9a-f]{64}$/),
  pepperVersionId: versionId,
});
export type Rehash = z.infer<typeof rehashSchema>;

/** The client key rehashes secret (`<stack>/llm-gateway/rehash`), written by the gateway only. */
export const rehashDocumentSchema = z.strictObject({
  version: z.literal(1),
  clients: z.record(id, rehashSchema).default({}),
});
export type RehashDocument = z.infer<typeof rehashDocumentSchema>;

/** The documents a new stack starts from: no key, no client, no rehash. */
export const EMPTY_PROVIDER_POOL: ProviderPool = { version: 1, providers: {} };
export const EMPTY_CLIENTS_DOCUMENT: ClientsDocument = { version: 1, clients: [], customDetectors: [] };
export const EMPTY_REHASH_DOCUMENT: RehashDocument = { version: 1, clients: {} };

/**
 * What CloudFormation generates as each document secret's first value: a placeholder, never a
 * document, so the template holds no document value that a change could write over the live key
 * pool or client records. CloudFormation generates it once, at creation; the CLI writes the real
 * documents. `GenerateStringKey` adds one random field (`placeholder`).
 */
export const UNINITIALIZED_TEMPLATE = '{"uninitialized":true}';

/**
 * The document a secret holds: its parsed JSON, or `empty` while the secret still holds the
 * placeholder above (`uninitialized: true` and nothing but the generated field).
 */
export function storedDocument<T>(parsed: unknown, empty: T): unknown {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return parsed;
  const record = parsed as Record<string, unknown>;
  const placeholder =
    record.uninitialized === true &&
    Object.keys(record).every((key) => key === 'uninitialized' || key === 'placeholder');
  return placeholder ? empty : parsed;
}

/**
 * Client keys read `dgw_<client id>_<43 base64url characters>` (32 random bytes), so the gateway finds the
 * record by id and then compares hashes in constant time.
 */
export const CLIENT_KEY_PATTERN = /^dgw_([a-z][a-z0-9-]{0,31})_([A-Za-z0-9_-]{43})$/;
