import { parseArgs } from 'node:util';
import { clients } from './commands/clients';
import { keys } from './commands/keys';
import { doctor, type DoctorClients } from './commands/doctor';
import { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { RDSClient } from '@aws-sdk/client-rds';
import { SNSClient } from '@aws-sdk/client-sns';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import { lockdown } from './commands/lockdown';
import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { secrets } from './commands/secrets';
import { revokeSessions } from './commands/sessions';
import { Context, type ContextOptions } from './context';
import { CliError } from './errors';
import { type Io, terminalIo } from './io';

export const USAGE = `dify-aws: operate a deployed Dify stack

usage: dify-aws <command> [options]

  keys add --provider P [--id ID] [--weight N] [--verify] [--base-url URL --models a,b]
                               add a provider key to the gateway's pool (the key is read from stdin)
  keys list                    ids, fingerprints, state and weight; never a key
  keys enable|disable|remove --provider P --id ID
  clients create --id ID --cidrs a,b [--models a,b] [--rpm N] [--tpm N]
                               a gateway client; its key is printed once and stored only as a hash
  clients list | rotate --id ID | revoke --id ID
  secrets rotate NAME          sandbox-key, plugin-daemon-key, plugin-inner-key, cache-dify-password,
                               cache-plugin-daemon-password, cache-gateway-password,
                               app-db-password, plugin-db-password
                               (secret-key is refused without --force-secret-key); redeploys its readers
  secrets migrate-kms --to KEY [--dry-run]
                               move every secret of the stack to another KMS key, rolling back on failure
  revoke-sessions              delete every console refresh token (a one-off task in the VPC)
  doctor [--max-age-days N]    check the deployed posture: TLS, WAF, deletion protection (prod),
                               rotation and secret ages, alarm subscribers; exits 4 on any failure
  lockdown [--undo]            incident: scale every service to zero and hold autoscaling there;
                               --undo restores each service's count and limits exactly

every command: --stack NAME (default Dify) --region REGION --json --yes (no confirmation prompts)
credentials: the AWS SDK's standard chain (AWS_PROFILE, environment, instance role)`;

const OPTIONS = {
  stack: { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean' },
  yes: { type: 'boolean' },
  help: { type: 'boolean' },
  provider: { type: 'string' },
  id: { type: 'string' },
  weight: { type: 'string' },
  verify: { type: 'boolean' },
  'base-url': { type: 'string' },
  models: { type: 'string' },
  cidrs: { type: 'string' },
  rpm: { type: 'string' },
  tpm: { type: 'string' },
  to: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'force-secret-key': { type: 'boolean' },
  undo: { type: 'boolean' },
  'max-age-days': { type: 'string' },
  timeout: { type: 'string' },
} as const;

/** Runs one command line; returns the exit code. Never throws. */
export async function run(
  argv: string[],
  io: Io = terminalIo(),
  overrides: Partial<ContextOptions> & { scaling?: ApplicationAutoScalingClient; doctor?: DoctorClients } = {},
): Promise<number> {
  let scaling = overrides.scaling;
  let madeScaling = false;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    io.err(`dify-aws: ${(error as Error).message.split('\n')[0]}; see dify-aws --help`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, action, ...rest] = positionals;
  if (values.help === true || command === undefined || command === 'help') {
    io.out(USAGE);
    return command === undefined && values.help !== true ? 2 : 0;
  }
  const ctx = new Context({
    io,
    stackName: values.stack ?? 'Dify',
    region: values.region,
    json: values.json === true,
    yes: values.yes === true,
    ...overrides,
  });
  try {
    const options = values as Record<string, string | boolean | undefined>;
    switch (command) {
      case 'keys':
        await keys(ctx, action, options);
        break;
      case 'clients':
        await clients(ctx, action, options);
        break;
      case 'secrets':
        await secrets(ctx, action, rest, options);
        break;
      case 'doctor': {
        const made = overrides.doctor === undefined;
        const region = { region: values.region };
        const doctorClients = overrides.doctor ?? {
          elb: new ElasticLoadBalancingV2Client(region),
          // CloudFront is global; its API lives in us-east-1.
          cloudFront: new CloudFrontClient({ region: 'us-east-1' }),
          waf: new WAFV2Client(region),
          rds: new RDSClient(region),
          sns: new SNSClient(region),
        };
        try {
          await doctor(ctx, options, doctorClients);
        } finally {
          if (made) for (const client of Object.values(doctorClients)) client.destroy();
        }
        break;
      }
      case 'revoke-sessions':
        await revokeSessions(ctx, options);
        break;
      case 'lockdown':
        await lockdown(ctx, options, () => {
          if (scaling === undefined) {
            scaling = new ApplicationAutoScalingClient({ region: values.region });
            madeScaling = true;
          }
          return scaling;
        });
        break;
      default:
        throw new CliError(
          `unknown command '${command}'; expected keys, clients, secrets, doctor, revoke-sessions or lockdown (dify-aws --help)`,
          2,
        );
    }
    return 0;
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`dify-aws: ${error.message}`);
      return error.exitCode;
    }
    // Unexpected: name the kind only; the message of an SDK error can quote request parameters.
    io.err(`dify-aws: unexpected ${(error as Error)?.name ?? 'error'}; nothing more is printed so that no secret is`);
    return 1;
  } finally {
    ctx.destroy();
    if (madeScaling) scaling?.destroy();
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
