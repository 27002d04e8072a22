import { matchesEventPattern } from './event-pattern';

/** The examples of EventBridge's documentation on event patterns and content filtering. */
describe('EventBridge event pattern evaluator', () => {
  const ec2 = {
    version: '0',
    id: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
    'detail-type': 'EC2 Instance State-change Notification',
    source: 'aws.ec2',
    account: '111122223333',
    time: '2017-12-22T18:43:48Z',
    region: 'us-west-1',
    resources: ['arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0'],
    detail: { 'instance-id': 'i-1234567890abcdef0', state: 'terminated', 'c-count': 5, 'd-count': 3, 'x-limit': null },
  };

  it.each([
    [{ source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'] }, true],
    [{ source: ['aws.ec2'], detail: { state: ['running'] } }, false],
    [{ detail: { state: ['running', 'terminated'] } }, true],
    [{ time: [{ prefix: '2017-12-22' }] }, true],
    [{ time: [{ prefix: '2018' }] }, false],
    [{ 'detail-type': [{ suffix: 'Notification' }] }, true],
    [{ detail: { state: [{ 'anything-but': 'initializing' }] } }, true],
    [{ detail: { state: [{ 'anything-but': ['stopped', 'terminated'] }] } }, false],
    [{ detail: { state: [{ 'anything-but': { prefix: 'term' } }] } }, false],
    [{ detail: { 'c-count': [{ numeric: ['>', 0, '<=', 5] }] } }, true],
    [{ detail: { 'c-count': [{ numeric: ['<', 5] }] } }, false],
    [{ detail: { 'c-count': [{ exists: true }] } }, true],
    [{ detail: { 'e-count': [{ exists: false }] } }, true],
    [{ detail: { 'c-count': [{ exists: false }] } }, false],
    [{ detail: { 'x-limit': [null] } }, true],
    [{ resources: ['arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0', 'other'] }, true],
    [{ detail: { $or: [{ 'c-count': [{ numeric: ['>', 10] }] }, { 'd-count': [{ numeric: ['<', 10] }] }] } }, true],
    [{ detail: { $or: [{ 'c-count': [{ numeric: ['>', 10] }] }, { 'd-count': [{ numeric: ['>', 10] }] }] } }, false],
  ])('%j -> %s', (pattern, expected) => {
    expect(matchesEventPattern(pattern, ec2)).toBe(expected);
  });

  it('searches arrays of objects element by element', () => {
    const event = {
      detail: {
        containers: [
          { name: 'a', exitCode: 0 },
          { name: 'b', exitCode: 137 },
        ],
      },
    };
    expect(matchesEventPattern({ detail: { containers: { exitCode: [{ 'anything-but': 0 }] } } }, event)).toBe(true);
    expect(matchesEventPattern({ detail: { containers: { exitCode: [{ 'anything-but': [0, 137] }] } } }, event)).toBe(
      false,
    );
    expect(matchesEventPattern({ detail: { containers: { name: ['c'] } } }, event)).toBe(false);
  });

  it('refuses a pattern it cannot read', () => {
    expect(() => matchesEventPattern({ detail: { state: [{ wildcard: 'x*' }] } }, ec2)).toThrow(
      'unsupported operator wildcard',
    );
    expect(() => matchesEventPattern({ detail: 'running' }, ec2)).toThrow('must be a list of filters');
  });
});
