import { build, VARIANTS } from './helpers/synth';

// One snapshot per profile, built through createApp exactly as bin/ does. A snapshot is a review aid
// for `cdk diff`-sized changes, not a proof of anything: every invariant has its own assertion.
// Asset hashes are masked by test/helpers/asset-hash-serializer.js.
describe.each(['dev', 'prod'])('the %s profile', (profile) => {
  it('matches the reviewed template', () => {
    // The variants of the same names: prod with the domain it requires.
    expect(build(VARIANTS[profile]).template.toJSON()).toMatchSnapshot();
  });
});
