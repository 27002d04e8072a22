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
      NO_PROXY:
        'the same clients and botocore: keeps S3 in the region, the task credentials address and the services direct (never the SSRF client, which SSRF_PROXY_ALL_URL pins to the proxy)',
      AWS_S3_US_EAST_1_REGIONAL_ENDPOINT:
        "botocore (the api's S3 storage): use s3.<region>.amazonaws.com in us-east-1 as everywhere, the name NO_PROXY keeps direct",
      PGSSLMODE:
        'libpq, under psycopg2: the pgvector store (api/core/rag/datasource/vdb/pgvector) opens its own pool without DB_EXTRAS, so verify-full comes from the environment',
      PGSSLROOTCERT: 'libpq, with PGSSLMODE: the RDS CA bundle baked into the image',
    },
  ]),
);
