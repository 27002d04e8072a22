import type { Wiring } from '../../lib/constructs/dify/environment';

/**
 * The wiring a service's environment is built from, with placeholder addresses, for a platform's
 * service domain and credentials address (ECS: `dify.internal`, 169.254.170.2).
 */
export function placeholderWiring(
  platform: Pick<Wiring, 'serviceDomain' | 'credentialsAddress'> = {
    serviceDomain: 'dify.internal',
    credentialsAddress: '169.254.170.2',
  },
): Omit<Wiring, 'urls'> {
  return {
    publicUrl: 'https://dify.example.com',
    region: 'eu-west-1',
    ...platform,
    databaseHost: 'db.example.internal',
    databasePort: 5432,
    appDatabase: 'dify',
    pluginDatabase: 'dify_plugin',
    cacheHost: 'cache.example.internal',
    cachePort: 6379,
    bucketName: 'dify-storage',
    pluginBucketName: 'dify-plugins',
    uploadFileSizeLimitMb: 15,
  };
}
