import { parseConfig } from '../../lib/config/load';
import { refusal } from '../helpers/config';
import { ZONE } from '../helpers/synth';

/**
 * The e-mail keys: SES verifies the domain through records in its hosted zone, so email=true needs
 * one, and sends only from that domain. Each refusal names the key, the value and what is expected.
 */

describe('configuration: e-mail', () => {
  it('is off by default, and sends from no-reply at the domain when turned on', () => {
    expect(parseConfig({}).email).toBe(false);
    const config = parseConfig({ ...ZONE, email: 'true' });
    expect(config.email).toBe(true);
    expect(config.emailFrom).toBeUndefined();
    expect(config.emailCredentialsGeneration).toBe(1);
    expect(parseConfig({ ...ZONE, email: 'true', emailFrom: 'dify@dify.example.com' }).emailFrom).toBe(
      'dify@dify.example.com',
    );
    expect(parseConfig({ ...ZONE, email: 'true', emailCredentialsGeneration: '3' }).emailCredentialsGeneration).toBe(3);
  });

  it.each([
    ['without a domain', { email: 'true' }],
    [
      'with a certificate but no hosted zone',
      {
        email: 'true',
        edge: 'alb',
        domainName: 'dify.example.com',
        certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012',
      },
    ],
  ])('refuses email=true %s, naming the zone it needs', (_name, context) => {
    const message = refusal(context);
    expect(message).toContain("context key 'email'");
    expect(message).toContain('needs domainName with hostedZoneId and hostedZoneName');
    expect(message).toContain('DKIM records');
  });

  it('refuses a sender outside the domain, naming it and the domain', () => {
    const message = refusal({ ...ZONE, email: 'true', emailFrom: 'no-reply@example.org' });
    expect(message).toContain("context key 'emailFrom'");
    expect(message).toContain("'no-reply@example.org' is not at domainName 'dify.example.com'");
    expect(message).toContain('no-reply@dify.example.com');
  });

  it('refuses a sender that is not an address, quoting it', () => {
    const message = refusal({ ...ZONE, email: 'true', emailFrom: 'no-reply' });
    expect(message).toContain("context key 'emailFrom'");
    expect(message).toContain('expected an e-mail address such as no-reply@dify.example.com, got "no-reply"');
  });

  it.each([['0'], ['1.5'], ['two']])('refuses emailCredentialsGeneration=%s', (generation) => {
    const message = refusal({ ...ZONE, email: 'true', emailCredentialsGeneration: generation });
    expect(message).toContain("context key 'emailCredentialsGeneration'");
    expect(message).toMatch(/expected (a whole number from 1|a number)/);
  });

  it.each([
    ['emailFrom', 'no-reply@dify.example.com'],
    ['emailCredentialsGeneration', '2'],
  ])('refuses %s without email=true rather than ignoring it', (key, value) => {
    const message = refusal({ ...ZONE, [key]: value });
    expect(message).toContain(`context key '${key}'`);
    expect(message).toContain('applies to email=true only');
  });
});
