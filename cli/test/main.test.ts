import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { freeLoopbackPort } from '../../test/helpers/free-port';
import { MOTO_CREDENTIALS } from '../../gateway/test/helpers/moto';
import { COMMANDS } from '../src/commands';
import type { AwsClients } from '../src/context';
import type { Io } from '../src/io';
import { OPTIONS, run, USAGE, VERSION } from '../src/main';
import { commandHelp, formHelp } from '../src/spec';
import { type Deployment, PLANTED, REGION, startDeployment } from './helpers/deployment';

interface Captured {
  code: number;
  out: string;
  err: string;
}

/** Runs `dify-aws <argv>` in this process, with only the overrides given: no client is made for it here. */
async function runCli(argv: string[], overrides: Parameters<typeof run>[2] = {}): Promise<Captured> {
  const captured: Captured = { code: -1, out: '', err: '' };
  const io: Io = {
    out: (line) => (captured.out += `${line}\n`),
    err: (line) => (captured.err += `${line}\n`),
    readSecret: async () => PLANTED.openai,
    confirm: async () => false,
  };
  captured.code = await run(argv, io, overrides);
  return captured;
}

/** Clients that record each one asked for: a command line refused before any AWS call asks for none. */
function untouchable(): { clients: Partial<AwsClients>; asked: string[] } {
  const asked: string[] = [];
  const clients = new Proxy(
    {},
    {
      get: (_, name) => {
        asked.push(String(name));
        throw new Error(`the ${String(name)} client was asked for`);
      },
    },
  );
  return { clients, asked };
}

/** The SDK's environment for a test, restored after it: no profile, no credentials, no instance metadata. */
function isolatedEnvironment(set: Record<string, string>): () => void {
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) {
    if (/^AWS_/.test(name)) delete process.env[name];
  }
  Object.assign(process.env, {
    AWS_CONFIG_FILE: '/nonexistent/dify-aws-test/config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/dify-aws-test/credentials',
    // The instance metadata service is not on loopback: never ask it.
    AWS_EC2_METADATA_DISABLED: 'true',
    ...set,
  });
  return () => {
    process.env = saved;
  };
}

/** What every command shares: the command table, the deployment's stacks, and how errors are said. */
describe('dify-aws', () => {
  let d: Deployment;
  /** A loopback port nothing listens on: an endpoint any call to fails at once, locally. */
  let closedPort: number;
  let restoreEnvironment: () => void;
  beforeAll(async () => {
    d = await startDeployment();
    closedPort = await freeLoopbackPort();
    // Any client a test does not give points at the closed port: nothing leaves the machine.
    restoreEnvironment = isolatedEnvironment({
      AWS_ENDPOINT_URL: `http://127.0.0.1:${closedPort}`,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_MAX_ATTEMPTS: '1',
    });
  });
  afterAll(async () => {
    restoreEnvironment?.();
    await d?.stop();
  });

  it('lists every command of the table in --help, and runs no other', async () => {
    for (const command of COMMANDS) expect(USAGE).toContain(`  ${command.name}`);
    const unknown = await d.cli(['launch']);
    expect([unknown.code, unknown.err]).toEqual([
      2,
      expect.stringContaining(
        `unknown command 'launch'; expected ${COMMANDS.slice(0, -1)
          .map((c) => c.name)
          .join(', ')} or ${COMMANDS.at(-1)!.name}`,
      ),
    ]);
    const help = await d.cli(['--help']);
    expect([help.code, help.out.trim()]).toEqual([0, USAGE]);
  });

  it('reads the outputs of every stack of the deployment', async () => {
    // helpers/deployment.ts spreads the outputs over the four stacks; a command needs outputs of several.
    const listed = await d.cli(['clients', 'list', '--json']);
    expect(listed.code).toBe(0);
    const doctor = await d.cli(['lockdown', '--undo', '--json']);
    expect(doctor.err).not.toContain('has no output');
  });

  it('names a missing stack and its region, and suggests --stack', async () => {
    const missing = await d.cli(['keys', 'list', '--stack', 'NoSuchStack']);
    expect([missing.code, missing.err.trim()]).toEqual([
      1,
      'dify-aws: stack NoSuchStack not found in us-east-1; pass --stack NAME of a deployed stack (the name given to cdk deploy; Dify by default), and --region REGION if it is in another region',
    ]);
  });

  it('reads a deployment made before the split, whose main stack holds every output', async () => {
    await d.clients.cfn.send(
      new CreateStackCommand({
        StackName: 'Legacy',
        TemplateBody: JSON.stringify({
          Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
          Outputs: { GatewayProviderKeysSecretArn: { Value: d.outputs.GatewayProviderKeysSecretArn } },
        }),
      }),
    );
    const listed = await d.cli(['keys', 'list', '--stack', 'Legacy']);
    expect(listed.code).toBe(0);
    const missing = await d.cli(['clients', 'list', '--stack', 'Legacy']);
    expect([missing.code, missing.err]).toEqual([
      1,
      expect.stringContaining('deployment Legacy has no output GatewayClientsSecretArn'),
    ]);
  });

  it('names an unknown option', async () => {
    const option = await d.cli(['keys', 'list', '--colour']);
    expect([option.code, option.err]).toEqual([2, expect.stringContaining("Unknown option '--colour'")]);
  });

  it('prints usage and exits 2 without a command', async () => {
    const bare = await runCli([]);
    expect([bare.code, bare.out]).toEqual([2, `${USAGE}\n`]);
  });

  describe('says what went wrong with AWS, and what to do', () => {
    it('says how to set a region when none is set', async () => {
      const restore = isolatedEnvironment({ AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' });
      try {
        const result = await runCli(['keys', 'list']);
        expect([result.code, result.err.trim()]).toEqual([
          1,
          'dify-aws: reading the stacks of deployment Dify: no AWS region is set; pass --region REGION (such as us-east-1), set AWS_REGION, or set region in the AWS_PROFILE profile of ~/.aws/config',
        ]);
      } finally {
        restore();
      }
    });

    it('names the credential chain when there are no credentials', async () => {
      const restore = isolatedEnvironment({ AWS_ENDPOINT_URL: `http://127.0.0.1:${closedPort}` });
      try {
        const result = await runCli(['keys', 'list', '--region', REGION]);
        expect(result.code).toBe(1);
        expect(result.err).toContain('dify-aws: reading the stacks of deployment Dify: no AWS credentials found: ');
        for (const link of ['AWS_ACCESS_KEY_ID', 'AWS_PROFILE', 'aws sso login', 'instance role']) {
          expect(result.err).toContain(link);
        }
      } finally {
        restore();
      }
    });

    it('names the endpoint and the call when the network refuses the connection', async () => {
      const restore = isolatedEnvironment({
        AWS_ENDPOINT_URL: `http://127.0.0.1:${closedPort}`,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        AWS_MAX_ATTEMPTS: '1',
      });
      try {
        const result = await runCli(['keys', 'list', '--region', REGION]);
        expect([result.code, result.err]).toEqual([
          1,
          expect.stringContaining(
            `dify-aws: reading the stacks of deployment Dify: network error (ECONNREFUSED): the connection was refused by http://127.0.0.1:${closedPort} calling cloudformation:DescribeStacks; check the network`,
          ),
        ]);
      } finally {
        restore();
      }
    });

    it('names the endpoint and the call when the endpoint does not answer in time', async () => {
      // Accepts the connection and never answers.
      const sockets: Socket[] = [];
      const silent: TcpServer = createTcpServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const port = (silent.address() as { port: number }).port;
      const cloudFormation = new CloudFormationClient({
        region: REGION,
        endpoint: `http://127.0.0.1:${port}`,
        credentials: MOTO_CREDENTIALS,
        maxAttempts: 1,
        requestHandler: { requestTimeout: 200, throwOnRequestTimeout: true },
      });
      try {
        const result = await runCli(['keys', 'list', '--region', REGION], { clients: { cloudFormation } });
        expect([result.code, result.err]).toEqual([
          1,
          expect.stringContaining(
            `network error (ETIMEDOUT): no answer in time from http://127.0.0.1:${port} calling cloudformation:DescribeStacks`,
          ),
        ]);
      } finally {
        cloudFormation.destroy();
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    describe('against a Secrets Manager that answers with an error', () => {
      let server: Server;
      let endpoint = '';
      /** The next error the fake answers every request with. */
      let answer: { type: string; message: string } = { type: '', message: '' };
      beforeAll(async () => {
        server = createHttpServer((request, response) => {
          request.resume();
          request.on('end', () => {
            response.writeHead(400, {
              'content-type': 'application/x-amz-json-1.1',
              'x-amzn-errortype': answer.type,
              'x-amzn-requestid': 'b8c6f0a2-0000-4000-8000-000000000000',
            });
            response.end(JSON.stringify({ __type: answer.type, Message: answer.message }));
          });
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      });
      afterAll(async () => {
        await new Promise((resolve) => server.close(resolve));
      });
      const keysList = async () => {
        const secrets = new SecretsManagerClient({ region: REGION, endpoint, credentials: MOTO_CREDENTIALS });
        try {
          return await d.cli(['keys', 'list'], '', { clients: { cloudFormation: d.clients.cfn, secrets } });
        } finally {
          secrets.destroy();
        }
      };

      it('names the denied action and resource when the message says them', async () => {
        const arn = d.outputs.GatewayProviderKeysSecretArn;
        answer = {
          type: 'AccessDeniedException',
          message: `User: arn:aws:sts::123456789012:assumed-role/operators/alice is not authorized to perform: secretsmanager:GetSecretValue on resource: ${arn} because no identity-based policy allows the secretsmanager:GetSecretValue action`,
        };
        const result = await keysList();
        expect([result.code, result.err.trim()]).toEqual([
          1,
          `dify-aws: reading the provider key pool: access denied (AccessDeniedException): the role or user in use may not call secretsmanager:GetSecretValue on ${arn}; grant secretsmanager:GetSecretValue to that role or user, or use credentials that have it (AWS_PROFILE)`,
        ]);
      });

      it('names the action of the call when the message does not', async () => {
        answer = { type: 'AccessDeniedException', message: 'Access to KMS is not allowed' };
        const result = await keysList();
        expect(result.err).toContain(
          'access denied (AccessDeniedException): the role or user in use may not call secretsmanager:GetSecretValue;',
        );
      });

      it('prints only the kind of an error it does not know, never the message that quotes a secret', async () => {
        // d.cli fails the test if a planted secret reaches stdout or stderr.
        answer = { type: 'ValidationException', message: `Invalid SecretString '${PLANTED.openai}'` };
        const result = await keysList();
        expect([result.code, result.err.trim()]).toEqual([
          1,
          'dify-aws: reading the provider key pool: secretsmanager:GetSecretValue failed with ValidationException',
        ]);
      });
    });
  });

  describe('checks the arguments before any AWS call', () => {
    it.each([
      [['keys'], 'keys: expected an action: add, list, enable, disable or remove (dify-aws keys --help)'],
      [['keys', 'rename'], "keys: unknown action 'rename'; expected add, list, enable, disable or remove"],
      [['keys', 'add'], 'keys add: --provider P is required: the provider: openai, anthropic, azure-openai, custom'],
      [
        ['keys', 'add', '--provider', 'gemini'],
        "--provider 'gemini': expected one of openai, anthropic, azure-openai, custom",
      ],
      [
        ['keys', 'add', '--provider', 'openai', '--weight', '0'],
        "--weight '0': expected a whole number from 1 to 1000",
      ],
      [
        ['keys', 'add', '--provider', 'openai', '--weight', '2.5'],
        "--weight '2.5': expected a whole number from 1 to 1000",
      ],
      [
        ['keys', 'add', '--provider', 'custom', '--base-url', 'http://llm.example.com/v1', '--models', 'llama'],
        "--base-url 'http://llm.example.com/v1': expected an https:// URL (a provider key is never sent in clear)",
      ],
      [['keys', 'add', '--provider', 'custom', '--models', 'llama'], 'keys add: --base-url and --models go together'],
      [['keys', 'disable', '--provider', 'openai'], 'keys disable: --id ID is required'],
      [
        ['keys', 'list', '--cidrs', '10.0.0.0/8'],
        'keys list: --cidrs is not an option of this command; see dify-aws keys list --help',
      ],
      [['keys', 'list', 'everything'], "keys list: unexpected argument 'everything'; usage: dify-aws keys list"],
      [
        ['clients', 'create', '--id', 'other'],
        'clients create: --cidrs a,b is required: the networks the client calls from',
      ],
      [['clients', 'create', '--cidrs', '10.0.0.0/8'], 'clients create: --id ID is required'],
      [['clients', 'create', '--id', 'Bad_Id', '--cidrs', '10.0.0.0/8'], "--id 'Bad_Id': expected 1-32 characters"],
      [['clients', 'create', '--id', 'x', '--cidrs', '10.0.0.0/33'], "--cidrs: '10.0.0.0/33' is not a CIDR"],
      [
        ['clients', 'create', '--id', 'x', '--cidrs', '10.0.0.0/8', '--rpm', 'many'],
        "--rpm 'many': expected a whole number from 1 to 1000000",
      ],
      [['clients', 'rotate'], 'clients rotate: --id ID is required'],
      [['secrets'], 'secrets: expected an action: rotate or migrate-kms'],
      [['secrets', 'rotate'], 'secrets rotate: expected NAME'],
      [['secrets', 'rotate', 'pepper'], "secrets rotate NAME 'pepper': expected one of secret-key, sandbox-key"],
      [
        ['secrets', 'rotate', 'sandbox-key', '--timeout', 'soon'],
        "--timeout 'soon': expected a whole number of seconds from 1 to 86400",
      ],
      [['secrets', 'migrate-kms'], 'secrets migrate-kms: --to KEY is required'],
      [['revoke-sessions', '--timeout', '0'], "--timeout '0': expected a whole number of seconds from 1 to 86400"],
      [
        ['doctor', '--max-age-days', 'ninety'],
        "--max-age-days 'ninety': expected a whole number of days from 1 to 3650",
      ],
      [['lockdown', 'now'], "lockdown: unexpected argument 'now'"],
      [['quarantine'], 'quarantine: expected TARGET: a service (api,'],
      [['quarantine', 'pod/kube-system/coredns'], "quarantine: 'kube-system' is not one of Dify's namespaces"],
      [['investigate', '--since', '90x'], "--since '90x': expected a whole number and a unit"],
      [['investigate', '--timeout', '0'], "--timeout '0': expected a whole number of seconds from 1 to 3600"],
      [['keys', 'list', '--region', 'Mars-1'], "--region 'Mars-1': expected an AWS region name such as us-east-1"],
      [['keys', 'list', '--stack', 'my stack'], "--stack 'my stack': expected a CloudFormation stack name"],
      [['keys', 'add', '--provider'], "Option '--provider <value>' argument missing"],
    ])('refuses %j with exit code 2 and asks for no AWS client', async (argv, message) => {
      const { clients, asked } = untouchable();
      const result = await runCli(argv, { clients });
      expect([result.code, result.out, result.err]).toEqual([2, '', expect.stringContaining(`dify-aws: ${message}`)]);
      expect(asked).toEqual([]);
    });

    it('says a usage error as a JSON object on stderr with --json, and nothing on stdout', async () => {
      const { clients, asked } = untouchable();
      const result = await runCli(['keys', 'add', '--json'], { clients });
      expect([result.code, result.out]).toEqual([2, '']);
      expect(JSON.parse(result.err)).toEqual({
        error: {
          kind: 'usage',
          exitCode: 2,
          message: 'keys add: --provider P is required: the provider: openai, anthropic, azure-openai, custom',
        },
      });
      expect(asked).toEqual([]);
    });

    it('gives each option name one type across commands, so one parser serves them all', () => {
      const types = new Map<string, Set<boolean>>();
      for (const command of COMMANDS) {
        for (const form of command.actions ?? [command.form!]) {
          for (const option of form.options) {
            types.set(option.name, (types.get(option.name) ?? new Set()).add(option.value !== undefined));
          }
        }
      }
      expect([...types].filter(([, kinds]) => kinds.size > 1).map(([name]) => name)).toEqual([]);
      expect(Object.keys(OPTIONS)).toEqual(expect.arrayContaining([...types.keys(), 'version', 'json', 'help']));
    });
  });

  describe('help and version', () => {
    const forms = COMMANDS.flatMap((command) =>
      command.actions === undefined
        ? [{ argv: [command.name], form: command.form!, command }]
        : command.actions.map((action) => ({ argv: [command.name, action.name], form: action, command })),
    );

    it.each(forms.map((f) => [f.argv.join(' '), f] as const))(
      'gives %s its own --help, with its options and an example, and calls nothing',
      async (_, { argv, form }) => {
        const { clients, asked } = untouchable();
        const viaFlag = await runCli([...argv, '--help'], { clients });
        const viaHelp = await runCli(['help', ...argv], { clients });
        expect([viaFlag.code, viaHelp.code, viaFlag.err, asked]).toEqual([0, 0, '', []]);
        expect(viaFlag.out).toBe(viaHelp.out);
        expect(viaFlag.out.trim()).toBe(formHelp(`dify-aws ${argv.join(' ')}`, form));
        expect(viaFlag.out).not.toBe(`${USAGE}\n`);
        expect(viaFlag.out).toContain(`usage: dify-aws ${argv.join(' ')}`);
        for (const option of form.options) expect(viaFlag.out).toContain(`--${option.name}`);
        expect(form.examples.length).toBeGreaterThan(0);
        expect(viaFlag.out).toMatch(/\nexamples?:\n {2}(?:printf .*\| )?dify-aws /);
        for (const example of form.examples) expect(example).toContain(`dify-aws ${argv.join(' ')}`);
      },
    );

    it.each(COMMANDS.filter((c) => c.actions !== undefined).map((c) => [c.name, c] as const))(
      'gives %s --help its actions and examples',
      async (name, command) => {
        const viaFlag = await runCli([name, '--help']);
        const viaHelp = await runCli(['help', name]);
        expect([viaFlag.code, viaFlag.out]).toEqual([0, `${commandHelp(command)}\n`]);
        expect(viaHelp.out).toBe(viaFlag.out);
        for (const action of command.actions!) expect(viaFlag.out).toContain(`  ${action.name}  `);
        expect(viaFlag.out).toContain('examples:\n');
      },
    );

    it('refuses help for an unknown command or action', async () => {
      expect(await runCli(['help', 'launch'])).toMatchObject({
        code: 2,
        err: expect.stringContaining("unknown command 'launch'"),
      });
      expect(await runCli(['keys', 'rename', '--help'])).toMatchObject({
        code: 2,
        err: expect.stringContaining("keys: unknown action 'rename'"),
      });
    });

    it("prints the package's version", async () => {
      const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
        version: string;
      };
      expect(VERSION).toBe(version);
      expect(await runCli(['--version'])).toEqual({ code: 0, out: `dify-aws ${version}\n`, err: '' });
      expect(JSON.parse((await runCli(['--version', '--json'])).out)).toEqual({ version });
    });

    it('prints the version and the help of an action from the built CLI (cli/bin/dify-aws.js)', () => {
      const built = join(__dirname, '..', 'dist');
      const existed = existsSync(built);
      try {
        const bin = join(__dirname, '..', 'bin', 'dify-aws.js');
        const version = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
        expect([version.status, version.stdout]).toEqual([0, `dify-aws ${VERSION}\n`]);
        const help = spawnSync(process.execPath, [bin, 'clients', 'create', '--help'], { encoding: 'utf8' });
        expect([help.status, help.stdout]).toEqual([
          0,
          expect.stringContaining('usage: dify-aws clients create --id ID --cidrs a,b'),
        ]);
      } finally {
        // The bin bundles into cli/dist on first use; a test leaves nothing behind that was not there.
        if (!existed) rmSync(built, { recursive: true, force: true });
      }
    });
  });

  describe('--json', () => {
    /**
     * Every command with --json against the moto deployment: its result, if any, is JSON on stdout, and
     * an error is a JSON object as the last line of stderr (progress lines come before it).
     */
    it.each([
      [['keys', 'list'], 0],
      [['clients', 'list'], 0],
      [['secrets', 'migrate-kms', '--to', 'KEY_A', '--dry-run'], 0],
      [['secrets', 'rotate', 'sandbox-key', '--yes'], 1],
      [['revoke-sessions'], 3],
      [['doctor'], 1],
      // Application Auto Scaling is not in moto's deployment: the closed port refuses it.
      [['lockdown', '--undo'], 1],
      [['quarantine', 'api', '--yes'], 1],
      [['investigate', '--since', '5m', '--timeout', '1'], 4],
    ])('%j prints JSON only on stdout, and a JSON error', async (argv, code) => {
      const result = await d.cli([...argv.map((a) => (a === 'KEY_A' ? d.keyA : a)), '--json']);
      expect(result.code).toBe(code);
      if (code === 0) expect(() => JSON.parse(result.out)).not.toThrow();
      else if (result.out !== '') expect(() => JSON.parse(result.out)).not.toThrow();
      const last = result.err.trim().split('\n').at(-1) ?? '';
      if (code === 0) expect(last).not.toMatch(/^\{"error"/);
      else {
        expect(JSON.parse(last)).toEqual({
          error: { kind: expect.any(String), message: expect.any(String), exitCode: code },
        });
      }
    });
  });
});
