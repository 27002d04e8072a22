/**
 * The pinned Dify release's contract: its services, ports, health checks, and every environment
 * variable each one reads, marked required or secret (contracts/dify/services.json, taken from the
 * release's own compose file, entrypoints and config classes). The stack's containers are held to it
 * by test/dify/environment.test.ts. Kept in the repository, so a fresh clone needs nothing beside it;
 * `npm run contract:refresh -- <path>` replaces it with a new release's.
 */
import release from './dify/services.json';

export interface DifyVariable {
  readonly required?: boolean;
  readonly secret?: boolean;
  readonly default?: unknown;
  readonly notes?: string;
}

export interface DifyServiceContract {
  readonly image: string;
  readonly tag: string;
  readonly port?: number | null;
  readonly env: Record<string, DifyVariable>;
}

export interface DifyReleaseContract {
  readonly difyVersion: string;
  readonly versions: Record<string, string>;
  /** Groups of variables (across services) that must hold the same secret. */
  readonly sharedSecretsMustMatch: string[][];
  readonly services: Record<string, DifyServiceContract>;
}

export const DIFY_RELEASE = release as unknown as DifyReleaseContract;

/**
 * The image tags the contract describes and that go together: Dify's api and web, and the plugin
 * daemon and sandbox releases the same compose file runs beside them. The configuration refuses other
 * tags unless `difyVersionUnchecked=true` (lib/config/schema.ts).
 */
export const DIFY_RELEASE_TAGS = {
  dify: DIFY_RELEASE.difyVersion,
  pluginDaemon: DIFY_RELEASE.services.plugin_daemon.tag,
  sandbox: DIFY_RELEASE.services.sandbox.tag,
} as const;
