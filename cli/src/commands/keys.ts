import { createHash } from 'node:crypto';
import { probeRequest } from '../../../contracts/provider-api';
import {
  EMPTY_PROVIDER_POOL,
  PROVIDERS,
  type ProviderName,
  type ProviderPool,
  providerSchema,
  providerPoolSchema,
} from '../../../contracts/gateway-documents';
import type { Command, OptionSpec } from '../command';
import type { Context } from '../context';
import { SecretDocument } from '../documents';
import { cancelled, CliError, UsageError } from '../errors';
import { table } from '../io';
import { oneOf, shown, wholeNumber } from '../spec';
import { OUTPUTS } from '../../../contracts/stack-outputs';

/** What a provider's keys look like; a value that does not fit is refused before it is stored. */
const KEY_SHAPES: Record<ProviderName, { pattern: RegExp; expected: string }> = {
  openai: {
    pattern: /^sk-[A-Za-z0-9_-]{20,}$/,
    expected: "an OpenAI key: 'sk-' then 20 or more letters, digits, - or _",
  },
  anthropic: {
    pattern: /^sk-ant-[A-Za-z0-9_-]{20,}$/,
    expected: "an Anthropic key: 'sk-ant-' then 20 or more characters",
  },
  'azure-openai': {
    pattern: /^(?:[0-9a-f]{32}|[A-Za-z0-9]{84})$/,
    expected: 'an Azure OpenAI key: 32 hex characters or 84 letters and digits',
  },
  custom: { pattern: /^\S{8,512}$/, expected: 'a key of 8 to 512 characters without spaces' },
};

/** A key's fingerprint: enough to tell keys apart in a list, useless for calling a provider. */
export const fingerprint = (key: string) => `sha256:${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;

/**
 * Whole days since a key was added to the pool, or undefined when the pool does not say (a key added
 * before the CLI recorded `addedAt`, or by hand). Provider keys cannot rotate themselves: their age is
 * what tells an operator to replace one.
 */
export function keyAgeDays(addedAt: string | undefined, now: Date): number | undefined {
  const added = addedAt === undefined ? Number.NaN : Date.parse(addedAt);
  return Number.isNaN(added) ? undefined : Math.max(0, Math.floor((now.getTime() - added) / 86_400_000));
}

/** Every key of the pool with its provider, as `keys list` and `doctor` read them. */
export function poolKeys(pool: ProviderPool) {
  return Object.entries(pool.providers).flatMap(([name, config]) => config!.keys.map((k) => ({ provider: name, k })));
}

/** The gateway's provider key pool, read from its secret. */
export async function readPool(ctx: Context): Promise<{ doc: SecretDocument<ProviderPool>; pool: ProviderPool }> {
  const stack = await ctx.stack();
  const doc = new SecretDocument(
    ctx.secrets(),
    stack.get(OUTPUTS.gatewayProviderKeysSecretArn),
    'provider key pool',
    providerPoolSchema,
    EMPTY_PROVIDER_POOL,
  );
  return { doc, pool: await doc.read() };
}

function provider(value: string | undefined): ProviderName {
  if (value === undefined || !(PROVIDERS as readonly string[]).includes(value)) {
    throw new CliError(`--provider: expected one of ${PROVIDERS.join(', ')}${value ? `, got '${value}'` : ''}`);
  }
  return value as ProviderName;
}

export async function keys(
  ctx: Context,
  action: string | undefined,
  options: Record<string, string | boolean | undefined>,
): Promise<void> {
  const { doc, pool } = await readPool(ctx);
  switch (action) {
    case 'list': {
      const now = ctx.now();
      const rows = poolKeys(pool).map(({ provider: name, k }) => ({
        provider: name,
        id: k.id,
        fingerprint: fingerprint(k.key),
        state: k.enabled ? 'enabled' : 'disabled',
        weight: k.weight,
        added: k.addedAt ?? '',
        ageDays: keyAgeDays(k.addedAt, now) ?? 'unknown',
      }));
      return ctx.print(rows, table(rows));
    }
    case 'add':
      return add(ctx, doc, pool, options);
    case 'enable':
    case 'disable':
    case 'remove': {
      const name = provider(options.provider as string | undefined);
      const id = options.id as string | undefined;
      const config = pool.providers[name];
      const index = config?.keys.findIndex((k) => k.id === id) ?? -1;
      if (id === undefined || config === undefined || index < 0) {
        throw new CliError(`--id: no key '${id ?? ''}' for provider ${name}; 'dify-aws keys list' shows the ids`);
      }
      if (action === 'remove') {
        if (!(await ctx.confirm(`Remove key ${id} of ${name} from the pool? The gateway stops using it within 30 s.`)))
          throw cancelled();
        config.keys.splice(index, 1);
      } else config.keys[index] = { ...config.keys[index], enabled: action === 'enable' };
      const version = await doc.write(pool);
      return ctx.print(
        { provider: name, id, action, versionId: version },
        `${action}d key ${id} of ${name} (new version ${version}); the gateway picks it up without a restart`,
      );
    }
    default:
      throw new CliError(`keys: expected add, list, enable, disable or remove${action ? `, got '${action}'` : ''}`);
  }
}

async function add(
  ctx: Context,
  doc: SecretDocument<ProviderPool>,
  pool: ProviderPool,
  options: Record<string, string | boolean | undefined>,
): Promise<void> {
  const name = provider(options.provider as string | undefined);
  let config = pool.providers[name];
  if (config === undefined) {
    if (typeof options['base-url'] !== 'string' || typeof options.models !== 'string') {
      throw new CliError(`provider ${name} is not in the pool yet: pass --base-url URL and --models id,id for it`);
    }
    config = {
      baseUrl: options['base-url'],
      models: options.models
        .split(',')
        .map((m) => m.trim())
        .filter(Boolean),
      keys: [],
    };
  }
  const checked = providerSchema.safeParse(config);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const flag =
      issue.path[0] === 'baseUrl' ? '--base-url' : issue.path[0] === 'models' ? '--models' : String(issue.path[0]);
    throw new CliError(`${flag}: ${issue.message}`);
  }
  const id = (options.id as string | undefined) ?? `${name}-${config.keys.length + 1}`;
  if (config.keys.some((k) => k.id === id)) throw new CliError(`--id: provider ${name} already has a key '${id}'`);
  // Checked before any AWS call (KEYS below).
  const weight = options.weight === undefined ? 1 : Number(options.weight);
  const key = await ctx.io.readSecret(`${name} key (not echoed): `);
  const shape = KEY_SHAPES[name];
  if (!shape.pattern.test(key)) throw new CliError(`the key read from stdin does not look like ${shape.expected}`);
  const existing = Object.values(pool.providers)
    .flatMap((p) => p!.keys)
    .find((k) => k.key === key);
  if (existing !== undefined) throw new CliError(`this key is already in the pool as '${existing.id}'`);
  if (options.verify === true) {
    const probe = probeRequest(name, config, key);
    ctx.progress(`verifying the key against ${new URL(probe.url).host}…`);
    const response = await fetch(probe.url, { headers: probe.headers, signal: AbortSignal.timeout(15_000) }).catch(
      () => undefined,
    );
    if (response === undefined)
      throw new CliError(`--verify: could not reach ${new URL(probe.url).host}; the key was not stored`);
    if (!response.ok)
      throw new CliError(`--verify: ${name} answered ${response.status} to this key; it was not stored`);
  }
  config.keys.push({ id, key, weight, enabled: true, addedAt: ctx.now().toISOString() });
  pool.providers[name] = config;
  const version = await doc.write(pool);
  ctx.print(
    { provider: name, id, fingerprint: fingerprint(key), weight, versionId: version },
    `added key ${id} (${fingerprint(key)}) to ${name} (new version ${version}); the gateway picks it up without a restart`,
  );
}

const PROVIDER: OptionSpec = {
  name: 'provider',
  value: 'P',
  description: `the provider: ${PROVIDERS.join(', ')}`,
  required: true,
  check: oneOf('--provider', PROVIDERS),
};
const KEY_ID: OptionSpec = {
  name: 'id',
  value: 'ID',
  description: "the key's id, as keys list shows it",
  required: true,
};

export const KEYS: Command = {
  name: 'keys',
  summary: "the LLM gateway's provider key pool: add, list, enable, disable, remove",
  actions: [
    {
      name: 'add',
      summary: "add a provider key to the gateway's pool; the key is read from stdin (never from argv)",
      description:
        "The key is read from stdin, or from a prompt that does not echo on a terminal, checked for the provider's key shape, optionally probed against the provider (--verify), and written as a new version of the pool's secret; the gateway picks it up without a restart. The first key of a provider needs --base-url and --models.",
      options: [
        PROVIDER,
        { name: 'id', value: 'ID', description: "the key's id (default: PROVIDER-N, the next number)" },
        {
          name: 'weight',
          value: 'N',
          description: "share of requests relative to the provider's other keys, 1 to 1000 (default 1)",
          check: wholeNumber('weight', 1, 1000),
        },
        { name: 'verify', description: 'probe the key against the provider before storing it' },
        {
          name: 'base-url',
          value: 'URL',
          description: "the provider's https:// base URL (for the provider's first key)",
          check: (value) => {
            const parsed = providerSchema.shape.baseUrl.safeParse(value);
            if (!parsed.success)
              throw new UsageError(`--base-url '${shown(value)}': ${parsed.error.issues[0].message}`);
          },
        },
        { name: 'models', value: 'a,b', description: 'the model ids the provider serves (for its first key)' },
      ],
      check: ({ options }) => {
        if ((options['base-url'] === undefined) !== (options.models === undefined)) {
          throw new UsageError(
            "keys add: --base-url and --models go together: give both, for the provider's first key",
          );
        }
      },
      examples: [
        'printf %s "$OPENAI_KEY" | dify-aws keys add --provider openai --base-url https://api.openai.com --models gpt-4o-mini',
        'dify-aws keys add --provider openai --id openai-2 --weight 2 --verify < new-key.txt',
      ],
    },
    {
      name: 'list',
      summary: 'ids, fingerprints, state, weight and age in days; never a key',
      options: [],
      examples: ['dify-aws keys list', 'dify-aws keys list --json'],
    },
    {
      name: 'enable',
      summary: 'let the gateway use a disabled key again',
      options: [PROVIDER, KEY_ID],
      examples: ['dify-aws keys enable --provider openai --id openai-1'],
    },
    {
      name: 'disable',
      summary: 'stop the gateway using a key, and keep it in the pool',
      options: [PROVIDER, KEY_ID],
      examples: ['dify-aws keys disable --provider openai --id openai-1'],
    },
    {
      name: 'remove',
      summary: 'remove a key from the pool (asks first; --yes answers)',
      options: [PROVIDER, KEY_ID],
      examples: ['dify-aws keys remove --provider openai --id openai-1 --yes'],
    },
  ],
  run: (ctx, { action, options }) => keys(ctx, action, options),
};
