import { CliError } from '../src/errors';
import { StackOutputs } from '../src/stack';

describe('StackOutputs', () => {
  it('names a missing output and asks whether the stack is one of ours', () => {
    const outputs = new StackOutputs('Dify', { Platform: 'ecs' });
    expect(() => outputs.get('ApiServiceName')).toThrow(CliError);
    expect(() => outputs.get('ApiServiceName')).toThrow(
      'deployment Dify has no output ApiServiceName; is it a dify-aws deployment of this release?',
    );
  });

  it('says that an ECS-only output is missing because the deployment runs Dify on EKS', () => {
    const outputs = new StackOutputs('Dify', { Platform: 'eks', GatewayServiceName: 'gw' });
    expect(outputs.get('GatewayServiceName')).toBe('gw');
    expect(() => outputs.get('ApiServiceName')).toThrow(
      'deployment Dify runs Dify on EKS, and this step needs ApiServiceName, which only an ECS deployment has',
    );
  });
});
