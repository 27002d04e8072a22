import { build, VARIANTS } from '../helpers/synth';

// One snapshot per stack of each profile, built through createApp exactly as bin/ does. A snapshot
// is a review aid for `cdk diff`-sized changes, not a proof of anything: every invariant has its own
// assertion. Asset hashes are masked by test/helpers/asset-hash-serializer.js.
describe.each(['dev', 'prod', 'eks-dev', 'eks-prod'])('the %s profile', (profile) => {
  // The variants of the same names: prod with the domain it requires; both again on EKS.
  const built = build(VARIANTS[profile]);
  it.each(Object.keys(built.templates))('%s matches the reviewed template', (stack) => {
    expect(built.templates[stack].toJSON()).toMatchSnapshot();
  });
});
