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
import type { Command } from '../command';
import type { Context } from '../context';
import { SecretDocument } from '../documents';
import { awsError, CliError } from '../errors';
import { table } from '../io';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { OUTPUTS } from '../../../contracts/stack-outputs';

const list = (value: unknown) =>
  typeof value === 'string'
    ? value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean)
    : undefined;

function cidrs(value: unknown): string[] {
  const parsed = list(value);
  if (parsed === undefined || parsed.length === 0) {
    throw new CliError('--cidrs: expected the networks the client calls from, e.g. --cidrs 10.0.4.0/22,10.0.8.0/22');
  }
  for (const cidr of parsed) {
    try {
      ipaddr.parseCIDR(cidr);
    } catch {
      throw new CliError(`--cidrs: '${cidr}' is not a CIDR such as 10.0.4.0/22`);
    }
  }
  return parsed;
}

const positive = (name: string, value: unknown, fallback: number) => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--${name}: expected a whole number of 1 or more`);
  return n;
};

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
      if (id === undefined || !/^[a-z][a-z0-9-]{0,31}$/.test(id)) {
        throw new CliError('--id: expected 1-32 characters: a lowercase letter, then lowercase letters, digits or -');
      }
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
        requestsPerMinute: positive('rpm', options.rpm, 600),
        tokensPerMinute: positive('tpm', options.tpm, 400_000),
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
      if (!(await ctx.confirm(`Replace client ${id}'s key? The old key stops working within 30 s.`)))
        throw new CliError('cancelled', 3);
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
      if (!(await ctx.confirm(`Revoke client ${id}? Its key stops working within 30 s.`)))
        throw new CliError('cancelled', 3);
      document.clients[index] = { ...document.clients[index], disabled: true };
      const version = await doc.write(document);
      return ctx.print({ id, action: 'revoked', versionId: version }, `revoked client ${id} (new version ${version})`);
    }
    default:
      throw new CliError(`clients: expected create, list, rotate or revoke${action ? `, got '${action}'` : ''}`);
  }
}

export const CLIENTS: Command = {
  name: 'clients',
  usage: `  clients create --id ID --cidrs a,b [--models a,b] [--rpm N] [--tpm N]
                               a gateway client; its key is printed once and stored only as a hash
  clients list | rotate --id ID | revoke --id ID`,
  run: (ctx, { action, options }) => clients(ctx, action, options),
};
