import { Duration } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { rdsCaBundle } from '../rds-ca';
import { grantSecretRead } from './secret-access';
import { inVpcCustomResource } from './in-vpc-custom-resource';
import type { LogSettings } from './log-group';
import type { Network } from './network';

export interface DatabaseBootstrapProps {
  readonly cluster: rds.DatabaseCluster;
  /** The database's side of its security group: the bootstrap is allowed in on 5432 and nowhere else. */
  readonly database: ec2.IConnectable;
  readonly masterSecret: secretsmanager.ISecret;
  /** One login role per purpose, each owning its own database. */
  readonly roles: ReadonlyArray<{ readonly secret: secretsmanager.ISecret; readonly database: string }>;
  readonly extensions: ReadonlyArray<{ readonly database: string; readonly name: string }>;
  readonly network: Network;
  readonly logs: LogSettings;
}

/**
 * Runs `lambda/db-bootstrap` once per deploy through CloudFormation: it creates Dify's databases, its
 * login roles and the `vector` extension as the master user, over 5432 from inside the VPC with TLS
 * and the server certificate verified (the Data API is off). The operator CLI invokes the same
 * function to change a role's password (`secrets rotate app-db-password`).
 *
 * The resource's properties hold ARNs only. The function reads every password at run time, so none
 * reaches the template, the properties CloudFormation echoes in events, or a log line.
 */
export class DatabaseBootstrap extends Construct {
  public readonly function: lambda.Function;

  constructor(scope: Construct, id: string, props: DatabaseBootstrapProps) {
    super(scope, id);
    const { network } = props;
    const bootstrap = inVpcCustomResource(this, {
      network,
      logs: props.logs,
      what: 'Database bootstrap',
      securityGroupDescription: 'Database bootstrap: PostgreSQL to Aurora, HTTPS to the VPC endpoints and S3 only',
      // Secrets Manager for the credentials; Lambda and S3 for the provider framework.
      endpoints: ['Lambda'],
      bundle: 'db-bootstrap',
      description: 'Dify: creates databases, login roles and extensions (5432, TLS verified, idempotent)',
      timeout: Duration.minutes(5),
      logGroupSuffix: 'db-bootstrap',
      resourceType: 'Custom::DifyDatabaseBootstrap',
      properties: {
        ClusterArn: props.cluster.clusterArn,
        MasterSecretArn: props.masterSecret.secretArn,
        Roles: props.roles.map((role) => ({ SecretArn: role.secret.secretArn, Database: role.database })),
        Extensions: props.extensions.map((extension) => ({ Database: extension.database, Name: extension.name })),
      },
      name: 'bootstrap function',
    });
    this.function = bootstrap.function;
    props.database.connections.allowDefaultPortFrom(bootstrap.securityGroup, 'Database bootstrap (TLS, verify-full)');
    // Refuse to bundle a trust anchor whose SHA-256 is not the pinned one.
    rdsCaBundle();
    for (const secret of [props.masterSecret, ...props.roles.map((role) => role.secret)]) {
      grantSecretRead(secret, this.function);
    }
    // The connection needs the writer instance, not just the cluster, to be up. Only the resource
    // waits for it: making the function or its role wait would close a cycle through the secrets key.
    bootstrap.resource.node.addDependency(props.cluster);
  }
}
