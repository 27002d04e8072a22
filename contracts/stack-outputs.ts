/**
 * The deployment's output names: what its stacks write (each owning construct, lib/constructs) and
 * what the operator CLI reads. Values are ARNs, names and URLs, never a secret value.
 */

/**
 * The stacks of a deployment named `name` (configuration key stackName), in the order they deploy:
 * keys, network, buckets and secrets; the data tier; the runtime and its chokepoints; then the main
 * stack, named after the deployment. Every output name is unique across them.
 */
export const deploymentStacks = (name: string) =>
  [`${name}-Foundation`, `${name}-Data`, `${name}-Runtime`, name] as const;

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
  /** The function that rotates the scheduled secrets (lambda/secret-rotation). */
  secretRotationFunctionName: 'SecretRotationFunctionName',
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
  /** Only with email=true: the SES SMTP credentials. */
  smtpSecretArn: 'SmtpSecretArn',
  dataKeyArn: 'DataKeyArn',
  secretsKeyArn: 'SecretsKeyArn',
  logsKeyArn: 'LogsKeyArn',
  clusterName: 'ClusterName',
  migrationTaskFamily: 'MigrationTaskFamily',
  migrationTaskSecurityGroupId: 'MigrationTaskSecurityGroupId',
  privateSubnetIds: 'PrivateSubnetIds',
  profile: 'Profile',
  /** `ecs` or `eks`: where Dify's services run (the LLM gateway runs on ECS Fargate in both). */
  platform: 'Platform',
  /** With platform=eks: the EKS cluster (ClusterName is then the ECS cluster of the LLM gateway). */
  eksClusterName: 'EksClusterName',
  /** With platform=eks: the in-VPC function the CLI reaches the private Kubernetes API through. */
  clusterResponderFunctionName: 'ClusterResponderFunctionName',
  /** With platform=eks: the IAM roles of the cluster's access entries (assumed with MFA). */
  breakGlassRoleArn: 'BreakGlassRoleArn',
  operatorRoleArn: 'OperatorRoleArn',
  responderRoleArn: 'ResponderRoleArn',
  gatewayUrl: 'GatewayUrl',
  gatewayServiceName: 'GatewayServiceName',
  gatewayLogGroupName: 'GatewayLogGroupName',
  gatewayProviderKeysSecretArn: 'GatewayProviderKeysSecretArn',
  gatewayClientsSecretArn: 'GatewayClientsSecretArn',
  gatewayPepperSecretArn: 'GatewayPepperSecretArn',
  gatewayRehashSecretArn: 'GatewayRehashSecretArn',
} as const;
export type OutputName = (typeof OUTPUTS)[keyof typeof OUTPUTS];

/** The outputs only a deployment with platform=eks has. */
export const EKS_OUTPUTS: readonly OutputName[] = [
  OUTPUTS.eksClusterName,
  OUTPUTS.clusterResponderFunctionName,
  OUTPUTS.breakGlassRoleArn,
  OUTPUTS.operatorRoleArn,
  OUTPUTS.responderRoleArn,
];

/** `<id>ServiceName`: the ECS service name of a long-running service. */
export const serviceNameOutput = (service: string) => `${service}ServiceName` as const;
/** `<id>LogGroupName`: the log group of a task definition. */
export const logGroupOutput = (task: string) => `${task}LogGroupName` as const;
