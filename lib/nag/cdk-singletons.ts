import type { Stack } from 'aws-cdk-lib';

/**
 * Acknowledgements for the singleton providers CDK itself adds to a stack (for example the one that
 * strips the VPC's default security group). They are filled in as the findings are known.
 */
export function acknowledgeCdkSingletons(stack: Stack): void {
  void stack;
}
