import type { DifyServiceName } from './environment';

/**
 * Variables we set that ../shared/dify/services.json does not list, each with what reads it in the
 * pinned release. The contract file lists what Dify's own settings code reads; these are read by the
 * libraries the release ships, so the environment test accepts them only from this documented list.
 */
export const CONTRACT_ADDITIONS: Partial<Record<DifyServiceName, Record<string, string>>> = Object.fromEntries(
  (['api', 'worker', 'worker_beat', 'migration'] as const).map((service) => [
    service,
    {
      HTTP_PROXY:
        'httpx (api/core/helper/*.py clients, trust_env) and requests in the dify-api image: the marketplace and plugin package downloads',
      HTTPS_PROXY: 'the same clients, for https:// URLs',
      NO_PROXY: 'the same clients and botocore: keeps S3, the task credentials address and the services direct',
    },
  ]),
);
