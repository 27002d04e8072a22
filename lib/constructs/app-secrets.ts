import { RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { OUTPUTS } from '../../contracts/stack-outputs';
import { output } from './outputs';

export interface AppSecretsProps {
  /** The secrets key: every value is encrypted with it. */
  readonly key: kms.IKey;
  /** RETAIN in prod for `SECRET_KEY`, whose loss ends every session and makes the system OAuth client parameters unreadable. */
  readonly removalPolicy: RemovalPolicy;
}

/**
 * Dify's own generated secrets, one Secrets Manager secret per purpose. CloudFormation generates each
 * value, so none is ever typed by a person, passed as context or written into the template.
 *
 * Values are alphanumeric: they end up in URLs and headers, where punctuation needs escaping that
 * Dify does not do. 64 alphanumeric characters carry about 380 bits.
 */
export class AppSecrets extends Construct {
  /**
   * Dify's `SECRET_KEY`: signs console tokens, web-app passports and file URLs, and encrypts the system
   * OAuth client parameters. Not the stored provider credentials: Dify encrypts those with each
   * workspace's RSA key, kept in the storage bucket. Shared by api, worker and beat.
   */
  public readonly secretKey: secretsmanager.Secret;
  /** `CODE_EXECUTION_API_KEY` of the api and `API_KEY` of the sandbox. */
  public readonly sandboxApiKey: secretsmanager.Secret;
  /** `PLUGIN_DAEMON_KEY` of the api and `SERVER_KEY` of the plugin daemon. */
  public readonly pluginDaemonKey: secretsmanager.Secret;
  /** `INNER_API_KEY_FOR_PLUGIN` of the api and `DIFY_INNER_API_KEY` of the plugin daemon. */
  public readonly pluginInnerApiKey: secretsmanager.Secret;
  /**
   * The api's `INIT_PASSWORD`: `/install` asks for it before anyone may create the owner account, so
   * the first allow-listed visitor cannot take the instance. Dify accepts at most 30 characters.
   */
  public readonly initPassword: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: AppSecretsProps) {
    super(scope, id);
    this.secretKey = this.generated(
      'SecretKey',
      'Dify SECRET_KEY (signs sessions and tokens; rotate only with dify-aws secrets rotate secret-key)',
      props,
      {
        // Losing SECRET_KEY ends every session and web-app identity and makes the system OAuth client
        // parameters unreadable, so it outlives the stack in prod just as the database snapshot does.
        removalPolicy: props.removalPolicy,
      },
    );
    acknowledge(
      this.secretKey.node.defaultChild!,
      ...noAutomaticRotation(
        'SECRET_KEY signs Dify’s console tokens, web-app passports and file URLs and encrypts the system OAuth client parameters (Dify 1.13.3: api/libs/passport.py, api/core/tools/utils/system_oauth_encryption.py; stored provider credentials use per-workspace RSA keys instead, api/libs/rsa.py). Dify accepts one key at a time, so a new one gives every anonymous web-app visitor a new identity and makes those parameters unreadable: it rotates when an operator decides (`dify-aws secrets rotate secret-key --force-secret-key`, e.g. after a leak), not on a schedule. Reads need an explicit grant (api, worker and beat only) and CloudTrail records each one.',
      ),
    );
    this.sandboxApiKey = this.generated('SandboxApiKey', 'Dify sandbox API key (api -> sandbox)', props);
    this.pluginDaemonKey = this.generated(
      'PluginDaemonKey',
      'Dify plugin daemon server key (api -> plugin daemon)',
      props,
    );
    this.pluginInnerApiKey = this.generated('PluginInnerApiKey', 'Dify inner API key (plugin daemon -> api)', props);
    this.initPassword = this.generated(
      'InitPassword',
      'Dify INIT_PASSWORD: asked for by /install before the owner account is created',
      props,
      // controllers/console/init_validate.py: the password field has max_length=30, so a longer
      // value could never be entered. 30 alphanumeric characters carry about 178 bits.
      { passwordLength: INIT_PASSWORD_LENGTH },
    );
    acknowledge(
      this.initPassword.node.defaultChild!,
      ...noAutomaticRotation(
        'Dify consults INIT_PASSWORD only until the owner account exists (controllers/console/wraps.py setup_required); after that it protects nothing, so rotating it would change no control. Reads need an explicit grant (the api only) and CloudTrail records each one.',
      ),
    );
    for (const secret of [this.sandboxApiKey, this.pluginDaemonKey, this.pluginInnerApiKey]) {
      acknowledge(
        secret.node.defaultChild!,
        ...rotatedOnSchedule(
          'Each of the two services that share this key accepts exactly one value (Dify 1.13.3, dify-sandbox, dify-plugin-daemon), so the new value becomes current and both restart together; calls between an old and a new task are refused until the rollout ends (README: Rotating secrets).',
        ),
      );
    }
    output(this, OUTPUTS.difySecretKeySecretArn, this.secretKey.secretArn);
    output(this, OUTPUTS.sandboxApiKeySecretArn, this.sandboxApiKey.secretArn);
    output(this, OUTPUTS.pluginDaemonKeySecretArn, this.pluginDaemonKey.secretArn);
    output(this, OUTPUTS.pluginInnerApiKeySecretArn, this.pluginInnerApiKey.secretArn);
    // Read it (aws secretsmanager get-secret-value) to open /install; it is never printed here.
    output(this, OUTPUTS.initPasswordSecretArn, this.initPassword.secretArn);
  }

  /** Every secret of this construct, for grants and outputs. */
  public get all(): secretsmanager.Secret[] {
    return [this.secretKey, this.sandboxApiKey, this.pluginDaemonKey, this.pluginInnerApiKey, this.initPassword];
  }

  private generated(
    id: string,
    description: string,
    props: AppSecretsProps,
    overrides: { removalPolicy?: RemovalPolicy; passwordLength?: number } = {},
  ): secretsmanager.Secret {
    return new secretsmanager.Secret(this, id, {
      description,
      encryptionKey: props.key,
      generateSecretString: {
        passwordLength: overrides.passwordLength ?? 64,
        excludePunctuation: true,
        includeSpace: false,
      },
      removalPolicy: overrides.removalPolicy ?? RemovalPolicy.DESTROY,
    });
  }
}

/** The longest INIT_PASSWORD Dify's /install form accepts (max_length=30). */
export const INIT_PASSWORD_LENGTH = 30;

/**
 * The three packs' rotation findings for a secret that rotates on the deployment's schedule through
 * the stack's rotation function (lib/constructs/secret-rotation.ts), whose rotation schedule lives in
 * the main stack beside the services it restarts, where cdk-nag, which looks only in the secret's own
 * stack, does not see it. `how` says what the rotation does to running services.
 */
export function rotatedOnSchedule(how: string) {
  const reason = `Rotates on the deployment's schedule (configuration key rotationSchedule, quarterly by default) through the stack's rotation function; its AWS::SecretsManager::RotationSchedule is in the deployment's main stack, beside the services it restarts, and cdk-nag looks for one only in the secret's own stack (test/constructs/secret-rotation.test.ts fails if a rotatable secret has none). ${how}`;
  return [{ id: 'AwsSolutions-SMG4', reason }, ...nistAndHipaa('SecretsManagerRotationEnabled', reason)];
}

/** The three packs' rotation findings for a secret that does not rotate on a schedule, and why. */
export function noAutomaticRotation(reason: string) {
  return [{ id: 'AwsSolutions-SMG4', reason }, ...nistAndHipaa('SecretsManagerRotationEnabled', reason)];
}
