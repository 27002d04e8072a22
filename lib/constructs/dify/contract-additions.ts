import type { DifyServiceName } from './catalog';

/**
 * Variables we set that contracts/dify/services.json does not list, each with what reads it in the
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

/**
 * Variables the contract marks required for a service whose code, in the pinned release, never
 * reads them, so we leave them out (each service gets exactly what its code reads). Each entry says
 * where the release reads the variable instead. The environment tests accept a missing required
 * variable only from this list.
 */
export const NOT_READ_BY: Partial<Record<DifyServiceName, Record<string, string>>> = {
  worker_beat: Object.fromEntries(
    [
      ['CODE_EXECUTION_ENDPOINT', 'core/helper/code_executor, at task or request time in the api and worker'],
      ['CODE_EXECUTION_API_KEY', 'core/helper/code_executor, at task or request time in the api and worker'],
      ['PLUGIN_DAEMON_URL', 'core/plugin/impl/base.py, at call time in the api and worker'],
      ['PLUGIN_DAEMON_KEY', 'core/plugin/impl/base.py, at call time in the api and worker'],
      ['INNER_API_KEY_FOR_PLUGIN', 'controllers/inner_api/wraps.py, on requests the api serves'],
      ...['HOST', 'PORT', 'USER', 'PASSWORD', 'DATABASE'].map((part) => [
        `PGVECTOR_${part}`,
        'core/rag/datasource/vdb/pgvector, when a worker or the api opens the vector store',
      ]),
    ].map(([name, where]) => [
      name,
      `celery beat (api/extensions/ext_celery.py) only publishes scheduled tasks to the broker; read by ${where}`,
    ]),
  ),
};
