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

  it('says plainly that an EKS deployment’s services are not managed by this release, and what to use', () => {
    const outputs = new StackOutputs('Dify', { Platform: 'eks', GatewayServiceName: 'gw' });
    expect(outputs.get('GatewayServiceName')).toBe('gw');
    expect(() => outputs.get('ApiServiceName')).toThrow(/runs Dify on EKS, and this command needs ApiServiceName/);
    expect(() => outputs.get('ApiServiceName')).toThrow(/incident-responder role with kubectl/);
  });
});
