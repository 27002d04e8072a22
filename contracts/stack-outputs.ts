/**
 * The main stack's output names: what the stack writes (lib/stacks, each owning construct) and what the
 * operator CLI reads. Values are ARNs, names and URLs, never a secret value.
 */

/** The long-running services with a `<id>ServiceName` output, by construct id. */
export const SERVICES = ['Api', 'Worker', 'Beat', 'Web', 'Sandbox', 'PluginDaemon', 'SsrfProxy', 'Gateway'] as const;
export type ServiceId = (typeof SERVICES)[number];

/** Every task definition with a `<id>LogGroupName` output: the services and the migration task. */
export const TASKS = [...SERVICES.filter((s) => s !== 'Gateway'), 'MigrationTask'] as const;

export const OUTPUTS = {
  difyUrl: 'DifyUrl',
  loadBalancerArn: 'LoadBalancerArn',
  /** Only with edge=cloudfront. */
  distributionId: 'DistributionId',
  vpcId: 'VpcId',
  storageBucketName: 'StorageBucketName',
  pluginBucketName: 'PluginBucketName',
  logBucketName: 'LogBucketName',
  alarmTopicArn: 'AlarmTopicArn',
  databaseClusterArn: 'DatabaseClusterArn',
  databaseMasterSecretArn: 'DatabaseMasterSecretArn',
  databaseAppSecretArn: 'DatabaseAppSecretArn',
  databasePluginSecretArn: 'DatabasePluginSecretArn',
  databaseBootstrapFunctionName: 'DatabaseBootstrapFunctionName',
  cacheReplicationGroupId: 'CacheReplicationGroupId',
  cacheDifyUserSecretArn: 'CacheDifyUserSecretArn',
  cachePluginDaemonUserSecretArn: 'CachePluginDaemonUserSecretArn',
  cacheGatewayUserSecretArn: 'CacheGatewayUserSecretArn',
  cacheDifyUserId: 'CacheDifyUserId',
  cachePluginDaemonUserId: 'CachePluginDaemonUserId',
  cacheGatewayUserId: 'CacheGatewayUserId',
  difySecretKeySecretArn: 'DifySecretKeySecretArn',
  sandboxApiKeySecretArn: 'SandboxApiKeySecretArn',
  pluginDaemonKeySecretArn: 'PluginDaemonKeySecretArn',
  pluginInnerApiKeySecretArn: 'PluginInnerApiKeySecretArn',
  initPasswordSecretArn: 'InitPasswordSecretArn',
  dataKeyArn: 'DataKeyArn',
  secretsKeyArn: 'SecretsKeyArn',
  logsKeyArn: 'LogsKeyArn',
  clusterName: 'ClusterName',
  migrationTaskFamily: 'MigrationTaskFamily',
  migrationTaskSecurityGroupId: 'MigrationTaskSecurityGroupId',
  privateSubnetIds: 'PrivateSubnetIds',
  profile: 'Profile',
  gatewayUrl: 'GatewayUrl',
  gatewayServiceName: 'GatewayServiceName',
  gatewayLogGroupName: 'GatewayLogGroupName',
  gatewayProviderKeysSecretArn: 'GatewayProviderKeysSecretArn',
  gatewayClientsSecretArn: 'GatewayClientsSecretArn',
  gatewayPepperSecretArn: 'GatewayPepperSecretArn',
} as const;
export type OutputName = (typeof OUTPUTS)[keyof typeof OUTPUTS];

/** `<id>ServiceName`: the ECS service name of a long-running service. */
export const serviceNameOutput = (service: ServiceId) => `${service}ServiceName`;
/** `<id>LogGroupName`: the log group of a task definition. */
export const logGroupOutput = (task: string) => `${task}LogGroupName`;
