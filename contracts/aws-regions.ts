/**
 * The AWS regions by name, as the AWS SDK's partition table lists them (@aws-sdk/core 3.981,
 * December 2026). The app deploys to the commercial `aws` partition only: its CloudFront edge stack
 * lives in us-east-1 of that partition, and no variant in another partition is synthesized or tested.
 * The other partitions' regions are listed so that a refusal can say which partition a name belongs
 * to instead of calling it a typo. test/config/config.test.ts holds this table to the installed
 * SDK's and CDK's region lists.
 */

/** Commercial (`aws` partition) regions and the SDK's description of each. */
export const AWS_COMMERCIAL_REGIONS: Readonly<Record<string, string>> = {
  'af-south-1': 'Africa (Cape Town)',
  'ap-east-1': 'Asia Pacific (Hong Kong)',
  'ap-east-2': 'Asia Pacific (Taipei)',
  'ap-northeast-1': 'Asia Pacific (Tokyo)',
  'ap-northeast-2': 'Asia Pacific (Seoul)',
  'ap-northeast-3': 'Asia Pacific (Osaka)',
  'ap-south-1': 'Asia Pacific (Mumbai)',
  'ap-south-2': 'Asia Pacific (Hyderabad)',
  'ap-southeast-1': 'Asia Pacific (Singapore)',
  'ap-southeast-2': 'Asia Pacific (Sydney)',
  'ap-southeast-3': 'Asia Pacific (Jakarta)',
  'ap-southeast-4': 'Asia Pacific (Melbourne)',
  'ap-southeast-5': 'Asia Pacific (Malaysia)',
  'ap-southeast-6': 'Asia Pacific (New Zealand)',
  'ap-southeast-7': 'Asia Pacific (Thailand)',
  'ca-central-1': 'Canada (Central)',
  'ca-west-1': 'Canada West (Calgary)',
  'eu-central-1': 'Europe (Frankfurt)',
  'eu-central-2': 'Europe (Zurich)',
  'eu-north-1': 'Europe (Stockholm)',
  'eu-south-1': 'Europe (Milan)',
  'eu-south-2': 'Europe (Spain)',
  'eu-west-1': 'Europe (Ireland)',
  'eu-west-2': 'Europe (London)',
  'eu-west-3': 'Europe (Paris)',
  'il-central-1': 'Israel (Tel Aviv)',
  'me-central-1': 'Middle East (UAE)',
  'me-south-1': 'Middle East (Bahrain)',
  'me-west-1': 'Middle East (Saudi Arabia)',
  'mx-central-1': 'Mexico (Central)',
  'sa-east-1': 'South America (Sao Paulo)',
  'sa-west-1': 'South America (Chile)',
  'us-east-1': 'US East (N. Virginia)',
  'us-east-2': 'US East (Ohio)',
  'us-west-1': 'US West (N. California)',
  'us-west-2': 'US West (Oregon)',
};

/** Regions of the other partitions, by name: the partition and its name for the region. */
export const AWS_OTHER_PARTITION_REGIONS: Readonly<Record<string, { partition: string; description: string }>> = {
  'cn-north-1': { partition: 'aws-cn', description: 'China (Beijing)' },
  'cn-northwest-1': { partition: 'aws-cn', description: 'China (Ningxia)' },
  'us-gov-east-1': { partition: 'aws-us-gov', description: 'AWS GovCloud (US-East)' },
  'us-gov-west-1': { partition: 'aws-us-gov', description: 'AWS GovCloud (US-West)' },
  'eusc-de-east-1': { partition: 'aws-eusc', description: 'AWS European Sovereign Cloud (Germany)' },
  'us-iso-east-1': { partition: 'aws-iso', description: 'US ISO East' },
  'us-iso-west-1': { partition: 'aws-iso', description: 'US ISO West' },
  'us-isob-east-1': { partition: 'aws-iso-b', description: 'US ISOB East (Ohio)' },
  'us-isob-west-1': { partition: 'aws-iso-b', description: 'US ISOB West' },
  'eu-isoe-west-1': { partition: 'aws-iso-e', description: 'EU ISOE West' },
  'us-isof-east-1': { partition: 'aws-iso-f', description: 'US ISOF East' },
  'us-isof-south-1': { partition: 'aws-iso-f', description: 'US ISOF South' },
};
