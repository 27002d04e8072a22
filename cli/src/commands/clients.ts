import * as ipaddr from 'ipaddr.js';
import { generateClientKey, hashClientKey, pepperRotationBlockers } from '../../../contracts/client-keys';
import {
  type ClientRecord,
  clientSchema,
  clientsDocumentSchema,
  EMPTY_CLIENTS_DOCUMENT,
  EMPTY_REHASH_DOCUMENT,
  rehashDocumentSchema,
} from '../../../contracts/gateway-documents';
import type { StackOutputs } from '../stack';
import type { Command, OptionSpec } from '../command';
import type { Context } from '../context';
import { SecretDocument } from '../documents';
import { awsError, cancelled, CliError, UsageError } from '../errors';
import { table } from '../io';
import { shown, wholeNumber } from '../spec';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { OUTPUTS } from '../../../contracts/stack-outputs';

const list = (value: unknown) =>
  typeof value === 'string'
    ? value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean)
    : undefined;

/** The networks of `--cidrs`, each an IPv4 or IPv6 CIDR; a UsageError names the one that is not. */
function cidrs(value: unknown): string[] {
  const parsed = list(value);
  if (parsed === undefined || parsed.length === 0) {
    throw new UsageError('--cidrs: expected the networks the client calls from, e.g. --cidrs 10.0.4.0/22,10.0.8.0/22');
  }
  for (const cidr of parsed) {
    try {
      ipaddr.parseCIDR(cidr);
    } catch {
      throw new UsageError(`--cidrs: '${shown(cidr)}' is not a CIDR such as 10.0.4.0/22 or 2001:db8::/56`);
    }
  }
  return parsed;
}

/** A client id as contracts/gateway-documents.ts accepts it. */
const CLIENT_ID = /^[a-z][a-z0-9-]{0,31}$/;

/** Checked before any AWS call (CLIENTS below); the value or the default. */
const count = (value: unknown, fallback: number) => (value === undefined ? fallback : Number(value));

/**
 * The enabled clients a pepper rotation would lock out (contracts/client-keys.ts), from the stack's
 * client records and the gateway's rehashes; none on a stack without them.
 */
export async function pepperRotationBlockersOf(
  ctx: Context,
  stack: StackOutputs,
  currentVersionId: string,
): Promise<string[]> {
  if (!stack.has(OUTPUTS.gatewayClientsSecretArn) || !stack.has(OUTPUTS.gatewayRehashSecretArn)) return [];
  const [records, rehashes] = await Promise.all([
    new SecretDocument(
      ctx.secrets(),
      stack.get(OUTPUTS.gatewayClientsSecretArn),
      'client records',
      clientsDocumentSchema,
      EMPTY_CLIENTS_DOCUMENT,
    ).read(),
    new SecretDocument(
      ctx.secrets(),
      stack.get(OUTPUTS.gatewayRehashSecretArn),
      'client key rehashes',
      rehashDocumentSchema,
      EMPTY_REHASH_DOCUMENT,
    ).read(),
  ]);
  return pepperRotationBlockers(records, rehashes, currentVersionId);
}

export async function clients(
  ctx: Context,
  action: string | undefined,
  options: Record<string, string | boolean | undefined>,
): Promise<void> {
  const stack = await ctx.stack();
  const doc = new SecretDocument(
    ctx.secrets(),
    stack.get(OUTPUTS.gatewayClientsSecretArn),
    'client records',
    clientsDocumentSchema,
    EMPTY_CLIENTS_DOCUMENT,
  );
  const document = await doc.read();
  const pepper = async () => {
    try {
      const value = await ctx
        .secrets()
        .send(new GetSecretValueCommand({ SecretId: stack.get(OUTPUTS.gatewayPepperSecretArn) }));
      if (!value.SecretString || value.SecretString.length < 32 || value.VersionId === undefined)
        throw new CliError('the pepper secret is missing or too short');
      // The version goes into the record: the gateway checks the key under that pepper version only.
      return { value: value.SecretString, versionId: value.VersionId };
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw awsError('reading the client key pepper', error);
    }
  };
  const id = options.id as string | undefined;
  const find = () => {
    const index = document.clients.findIndex((c) => c.id === id);
    if (id === undefined || index < 0)
      throw new CliError(`--id: no client '${id ?? ''}'; 'dify-aws clients list' shows the ids`);
    return index;
  };
  switch (action) {
    case 'list': {
      const rows = document.clients.map((c) => ({
        id: c.id,
        state: c.disabled ? 'revoked' : 'active',
        networks: c.allowedCidrs,
        models: c.allowedModels,
        rpm: c.requestsPerMinute,
        tpm: c.tokensPerMinute,
        created: c.createdAt ?? '',
      }));
      return ctx.print(rows, table(rows));
    }
    case 'create': {
      // Required and checked before any AWS call (CLIENTS below); this narrows the type.
      if (id === undefined) throw new UsageError('clients create: --id ID is required');
      if (document.clients.some((c) => c.id === id))
        throw new CliError(`--id: a client '${id}' exists; use 'clients rotate --id ${id}' for a new key`);
      const key = generateClientKey(id, ctx.randomBytes);
      const { value: pepperValue, versionId: pepperVersionId } = await pepper();
      const record: ClientRecord = clientSchema.parse({
        id,
        keyHash: hashClientKey(pepperValue, key),
        pepperVersionId,
        allowedCidrs: cidrs(options.cidrs),
        allowedModels: list(options.models) ?? ['*'],
        requestsPerMinute: count(options.rpm, 600),
        tokensPerMinute: count(options.tpm, 400_000),
        createdAt: ctx.now().toISOString(),
      });
      document.clients.push(record);
      const version = await doc.write(document);
      return ctx.print(
        { id, key, versionId: version },
        `created client ${id} (new version ${version}).\nIts key, shown this once and stored nowhere:\n\n  ${key}\n`,
      );
    }
    case 'rotate': {
      const index = find();
      if (!(await ctx.confirm(`Replace client ${id}'s key? The old key stops working within 30 s.`))) throw cancelled();
      const key = generateClientKey(id!, ctx.randomBytes);
      const { value: pepperValue, versionId: pepperVersionId } = await pepper();
      document.clients[index] = {
        ...document.clients[index],
        keyHash: hashClientKey(pepperValue, key),
        pepperVersionId,
        disabled: false,
      };
      const version = await doc.write(document);
      return ctx.print(
        { id, key, versionId: version },
        `rotated client ${id}'s key (new version ${version}). New key, shown this once:\n\n  ${key}\n`,
      );
    }
    case 'revoke': {
      const index = find();
      if (!(await ctx.confirm(`Revoke client ${id}? Its key stops working within 30 s.`))) throw cancelled();
      document.clients[index] = { ...document.clients[index], disabled: true };
      const version = await doc.write(document);
      return ctx.print({ id, action: 'revoked', versionId: version }, `revoked client ${id} (new version ${version})`);
    }
    default:
      throw new CliError(`clients: expected create, list, rotate or revoke${action ? `, got '${action}'` : ''}`);
  }
}

const EXISTING_ID: OptionSpec = {
  name: 'id',
  value: 'ID',
  description: "the client's id, as clients list shows it",
  required: true,
};

export const CLIENTS: Command = {
  name: 'clients',
  summary: "the LLM gateway's clients and their keys: create, list, rotate, revoke",
  actions: [
    {
      name: 'create',
      summary: 'a gateway client; its key is printed once and stored only as a hash',
      description:
        'The key is printed once (with --json, as "key") and stored only as its HMAC under the gateway\'s pepper: keep it, for nobody can print it again. The client may call from --cidrs only, use --models only, and is held to --rpm requests and --tpm tokens per minute.',
      options: [
        {
          name: 'id',
          value: 'ID',
          description: "the new client's id: 1-32 characters, a lowercase letter, then lowercase letters, digits or -",
          required: true,
          check: (value) => {
            if (!CLIENT_ID.test(value)) {
              throw new UsageError(
                `--id '${shown(value)}': expected 1-32 characters: a lowercase letter, then lowercase letters, digits or -`,
              );
            }
          },
        },
        {
          name: 'cidrs',
          value: 'a,b',
          description: 'the networks the client calls from, such as 10.0.4.0/22,10.0.8.0/22',
          required: true,
          check: (value) => void cidrs(value),
        },
        { name: 'models', value: 'a,b', description: 'the model ids it may use (default *, every model)' },
        {
          name: 'rpm',
          value: 'N',
          description: 'requests per minute, 1 to 1000000 (default 600)',
          check: wholeNumber('rpm', 1, 1_000_000),
        },
        {
          name: 'tpm',
          value: 'N',
          description: 'tokens per minute, 1 to 1000000000 (default 400000)',
          check: wholeNumber('tpm', 1, 1_000_000_000),
        },
      ],
      examples: [
        'dify-aws clients create --id dify --cidrs 10.0.4.0/22,10.0.8.0/22 --models gpt-4o-mini',
        'dify-aws clients create --id batch --cidrs 10.0.12.0/24 --rpm 60 --tpm 100000 --json > batch-client.json',
      ],
    },
    {
      name: 'list',
      summary: 'ids, state, networks, models and limits; never a key',
      options: [],
      examples: ['dify-aws clients list'],
    },
    {
      name: 'rotate',
      summary: "replace a client's key (asks first); the new key is printed once",
      options: [EXISTING_ID],
      examples: ['dify-aws clients rotate --id dify --yes'],
    },
    {
      name: 'revoke',
      summary: "stop a client's key working (asks first)",
      options: [EXISTING_ID],
      examples: ['dify-aws clients revoke --id dify'],
    },
  ],
  run: (ctx, { action, options }) => clients(ctx, action, options),
};
