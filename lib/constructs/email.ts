import { CustomResource, Duration, Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ses from 'aws-cdk-lib/aws-ses';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { OUTPUTS } from '../../contracts/stack-outputs';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { acknowledgeDeployTimeFunction } from '../nag/deploy-time-function';
import { BundledFunction } from './lambda-code';
import { noAutomaticRotation } from './app-secrets';
import { FunctionRole } from './function-role';
import { encryptedLogGroup, type LogSettings } from './log-group';
import type { Network } from './network';
import { output } from './outputs';
import { grantSecretRead, grantSecretWrite } from './secret-access';

/** SES's SMTP submission port with STARTTLS, the one Dify's client uses (SMTP_OPPORTUNISTIC_TLS). */
export const SMTP_PORT = 587;

export interface EmailProps {
  /** The domain SES verifies and sends from: Dify's own name (configuration key domainName). */
  readonly domainName: string;
  /** The Route 53 zone that holds `domainName`, where the DKIM and MAIL FROM records go. */
  readonly hostedZone: { readonly id: string; readonly name: string };
  /** The sender address, at `domainName`; the only one the SMTP user may send from. */
  readonly from: string;
  /** Raising it replaces the SMTP user's access key on the next deploy (configuration key emailCredentialsGeneration). */
  readonly credentialsGeneration: number;
  /** The VPC: the SMTP interface endpoint goes into its private subnets. */
  readonly network: Network;
  /** The secrets key: the SMTP credentials are encrypted with it. */
  readonly secretsKey: kms.IKey;
  readonly logs: LogSettings;
}

/** What Dify is told to reach SES with (environment.ts reads it). */
export interface SmtpSettings {
  readonly server: string;
  readonly port: number;
  readonly from: string;
}

/**
 * E-mail for Dify's invitations and password resets through Amazon SES:
 * - a domain identity for `domainName`, verified by Easy DKIM (2048-bit) records in the hosted zone,
 *   with a MAIL FROM domain (`bounce.<domainName>`, MX and SPF records) so that SPF aligns too;
 * - a default configuration set that refuses to deliver over plain text and publishes reputation
 *   metrics, and suppresses bounced and complaining addresses;
 * - an IAM user, the only kind of principal SES's SMTP interface accepts, whose one permission
 *   (through a group's managed policy) is `ses:SendRawEmail` of this identity from the one sender;
 * - its SMTP credentials, made at deploy time by a function (lambda/ses-smtp-credentials) that creates
 *   the access key, derives the SES SMTP password and writes both into a secret encrypted with the
 *   secrets key. The secret access key never reaches the template, an output, a log or CloudFormation;
 * - an interface endpoint for SES's SMTP service in the VPC, so that Dify's tasks, which have no route
 *   to the internet, submit mail without one; it admits 587 only from the services given to
 *   `allowSmtpFrom`.
 */
export class Email extends Construct {
  public readonly identity: ses.EmailIdentity;
  public readonly configurationSet: ses.ConfigurationSet;
  /** The SMTP user: SES SMTP credentials are long-term keys of an IAM user. */
  public readonly user: iam.User;
  /** `{"username","password"}`: the access key id and its SES SMTP password. */
  public readonly secret: secretsmanager.Secret;
  public readonly endpoint: ec2.InterfaceVpcEndpoint;
  public readonly smtp: SmtpSettings;

  constructor(scope: Construct, id: string, props: EmailProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const zone = route53.PublicHostedZone.fromPublicHostedZoneAttributes(this, 'HostedZone', {
      hostedZoneId: props.hostedZone.id,
      zoneName: props.hostedZone.name,
    });

    this.configurationSet = new ses.ConfigurationSet(this, 'ConfigurationSet', {
      // SES delivers to a receiving server only over TLS, or not at all.
      tlsPolicy: ses.ConfigurationSetTlsPolicy.REQUIRE,
      reputationMetrics: true,
      sendingEnabled: true,
      suppressionReasons: ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
    });
    // The domain itself, whose records go into the zone that contains it (CDK's publicHostedZone
    // identity would verify the zone's apex instead of Dify's own name).
    const identity: ses.Identity = { value: props.domainName, hostedZone: zone };
    this.identity = new ses.EmailIdentity(this, 'Identity', {
      identity,
      configurationSet: this.configurationSet,
      dkimSigning: true,
      dkimIdentity: ses.DkimIdentity.easyDkim(ses.EasyDkimSigningKeyLength.RSA_2048_BIT),
      mailFromDomain: `bounce.${props.domainName}`,
      // An MX record that is not yet visible delays nothing: SES falls back to its own MAIL FROM.
      mailFromBehaviorOnMxFailure: ses.MailFromBehaviorOnMxFailure.USE_DEFAULT_VALUE,
      // Bounces and complaints are suppressed by the configuration set, not mailed back to no-reply.
      feedbackForwarding: false,
    });

    const sendOnly = new iam.ManagedPolicy(this, 'SendPolicy', {
      description: `Dify SMTP: send raw e-mail from ${props.from} through the ${props.domainName} identity only`,
      statements: [
        new iam.PolicyStatement({
          sid: 'SendFromDifysSenderOnly',
          actions: ['ses:SendRawEmail'],
          resources: [
            this.identity.emailIdentityArn,
            stack.formatArn({
              service: 'ses',
              resource: 'configuration-set',
              resourceName: this.configurationSet.configurationSetName,
            }),
          ],
          conditions: { StringEquals: { 'ses:FromAddress': props.from } },
        }),
      ],
    });
    const group = new iam.Group(this, 'Senders', { managedPolicies: [sendOnly] });
    this.user = new iam.User(this, 'SmtpUser', { groups: [group] });

    this.secret = new secretsmanager.Secret(this, 'SmtpCredentials', {
      description: 'Dify SMTP credentials for Amazon SES (access key id and SMTP password), written at deploy time',
      encryptionKey: props.secretsKey,
      // A placeholder until the credentials function writes the real value, in the same deploy.
      generateSecretString: { passwordLength: 32, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(
      this.secret.node.defaultChild!,
      ...noAutomaticRotation(
        'SES SMTP credentials are an IAM user’s access key, which Secrets Manager’s rotation could replace only from a function with IAM access, and the VPC has no IAM endpoint. They rotate by a deploy with configuration key emailCredentialsGeneration raised: the credentials function writes a new key’s password, the replaced key stays valid until api and worker have restarted, and the next rotation or a stack delete removes it (README: Email). The key may only send raw e-mail from the one sender through this identity; reads of the secret need an explicit grant (api and worker only) and CloudTrail records each one.',
      ),
    );

    this.endpoint = this.smtpEndpoint(props.network);
    const credentialsFunction = this.credentialsFunction(props);
    new CustomResource(this, 'Credentials', {
      serviceToken: credentialsFunction,
      resourceType: 'Custom::DifySesSmtpCredentials',
      properties: {
        UserName: this.user.userName,
        SecretArn: this.secret.secretArn,
        Region: stack.region,
        Generation: String(props.credentialsGeneration),
      },
    });
    const subnets = new CustomResource(this, 'EndpointSubnets', {
      serviceToken: credentialsFunction,
      resourceType: 'Custom::DifySmtpEndpointSubnets',
      properties: {
        ServiceName: `com.amazonaws.${stack.region}.email-smtp`,
        Subnets: props.network.vpc
          .selectSubnets(props.network.privateSubnets)
          .subnets.map((subnet) => ({ Id: subnet.subnetId, Zone: subnet.availabilityZone })),
      },
    });
    // SES's SMTP endpoint service is missing from some zones (in us-east-1, most of them for some
    // accounts); the zones' names map to different zones per account, so they are chosen at deploy.
    (this.endpoint.node.defaultChild as ec2.CfnVPCEndpoint).addPropertyOverride(
      'SubnetIds',
      Fn.split(',', subnets.getAttString('SubnetIds')),
    );

    this.smtp = { server: `email-smtp.${stack.region}.amazonaws.com`, port: SMTP_PORT, from: props.from };
    output(this, OUTPUTS.smtpSecretArn, this.secret.secretArn);
  }

  /** Lets a service submit mail: 587 to the SMTP endpoint, written from the service's side (its stack). */
  public allowSmtpFrom(client: ec2.IConnectable, description: string): void {
    client.connections.allowTo(this.endpoint, ec2.Port.tcp(SMTP_PORT), `${description} to the SES SMTP endpoint`);
  }

  private smtpEndpoint(network: Network): ec2.InterfaceVpcEndpoint {
    const securityGroup = new ec2.SecurityGroup(this, 'SmtpEndpointSecurityGroup', {
      vpc: network.vpc,
      description: 'SES SMTP interface endpoint: 587 from the services that send mail only',
      allowAllOutbound: false,
    });
    // No endpoint policy: SES's SMTP endpoint service supports none. The user's own policy is what
    // limits the identity and the sender.
    return new ec2.InterfaceVpcEndpoint(this, 'SmtpEndpoint', {
      vpc: network.vpc,
      service: new ec2.InterfaceVpcEndpointAwsService('email-smtp', undefined, SMTP_PORT),
      privateDnsEnabled: true,
      open: false,
      securityGroups: [securityGroup],
      subnets: network.privateSubnets,
    });
  }

  /** The deploy-time function behind both custom resources, and its Provider's service token. */
  private credentialsFunction(props: EmailProps): string {
    const functionLogGroup = encryptedLogGroup(this, 'CredentialsLogGroup', props.logs, {
      suffix: 'ses-smtp-credentials',
    });
    const providerLogGroup = encryptedLogGroup(this, 'ProviderLogGroup', props.logs, {
      suffix: 'ses-smtp-credentials-provider',
    });
    const role = new FunctionRole(this, 'CredentialsRole', {
      logGroup: functionLogGroup,
      inVpc: false,
      unscopedActions: {
        actions: ['ec2:DescribeVpcEndpointServices'],
        why: 'read-only (which zones offer the SMTP endpoint service), and it supports no resource-level permission',
      },
    }).role;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SmtpUsersKeysOnly',
        actions: ['iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:ListAccessKeys'],
        resources: [this.user.userArn],
      }),
    );
    grantSecretWrite(this.secret, role);
    // It reads which key is current, to keep a replaced key until the consumers restart.
    grantSecretRead(this.secret, role);
    const handler = new BundledFunction(this, 'CredentialsFunction', {
      bundle: 'ses-smtp-credentials',
      role,
      timeout: Duration.minutes(1),
      description:
        'Dify: creates the SES SMTP user’s access key into its secret, and picks the SMTP endpoint’s subnets',
      logGroup: functionLogGroup,
    });
    const providerRole = new FunctionRole(this, 'ProviderRole', { logGroup: providerLogGroup, inVpc: false });
    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: handler,
      logGroup: providerLogGroup,
      frameworkOnEventRole: providerRole.role,
    });
    for (const fn of [handler, ...provider.node.findAll().filter((c) => c instanceof lambda.Function)]) {
      acknowledgeDeployTimeFunction(fn.node.defaultChild!);
      acknowledge(
        fn.node.defaultChild!,
        ...nistAndHipaa(
          'LambdaInsideVPC',
          'A deploy-time function that CloudFormation invokes (and its provider framework): it calls IAM, which has no VPC endpoint, Secrets Manager for the one SMTP secret, and a read-only EC2 describe, and never a workload; outside the VPC it has no network path to any workload, where inside it would need an internet route for IAM.',
        ),
      );
    }
    acknowledge(providerRole.role.node.findChild('DefaultPolicy').node.defaultChild!, {
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(handler.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason:
        'lambda:InvokeFunction on the versions and aliases of the one credentials function (the `:*` suffix), granted by the provider framework; no other function can be invoked.',
    });
    return provider.serviceToken;
  }
}
