/**
 * The operator's VPC, imported from ids (no lookup, so the synth stays offline), and the VPC
 * endpoints the functions in it need to reach AWS without a NAT gateway: S3 and DynamoDB
 * (gateway endpoints on the given route tables), Step Functions, Secrets Manager, SSM and X-Ray
 * (interface endpoints with private DNS, open on 443 to the functions' security groups only).
 * Logs and embedded metrics leave through the Lambda service, not the VPC. An interface
 * endpoint takes at most one subnet per Availability Zone: it gets the first of the subnets in
 * each zone. Private DNS of the interface endpoints needs the VPC's enableDnsSupport and
 * enableDnsHostnames (docs/deploy.md).
 */
import { Annotations, Aws, Fn, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import type { FunctionNetwork } from './ims-function.js';

export interface PrivateNetworkProps {
  vpcId: string;
  subnetIds: string[];
  /** The zone of each subnet, in order; needed (for the endpoints) with more than one subnet. */
  subnetAvailabilityZones?: string[];
  securityGroupIds: string[];
  /** Route tables of the subnets; with them, the endpoints are created. */
  endpointRouteTableIds?: string[];
}

export const GATEWAY_ENDPOINTS = ['s3', 'dynamodb'] as const;
export const INTERFACE_ENDPOINTS = ['states', 'secretsmanager', 'ssm', 'xray'] as const;

export class PrivateNetwork extends Construct {
  readonly functionNetwork: FunctionNetwork;
  readonly endpoints: ec2.CfnVPCEndpoint[] = [];

  constructor(scope: Construct, id: string, props: PrivateNetworkProps) {
    super(scope, id);
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: props.vpcId, availabilityZones: Stack.of(this).availabilityZones });
    this.functionNetwork = {
      vpc,
      subnets: props.subnetIds.map((subnetId, i) => {
        const availabilityZone = props.subnetAvailabilityZones?.[i];
        const subnet = availabilityZone ? ec2.Subnet.fromSubnetAttributes(this, `Subnet${i}`, { subnetId, availabilityZone }) : ec2.Subnet.fromSubnetId(this, `Subnet${i}`, subnetId);
        // Functions need no route table of the subnet; the endpoints get theirs from routeTableIds.
        Annotations.of(subnet).acknowledgeWarning('@aws-cdk/aws-ec2:noSubnetRouteTableId', 'the route tables are given as routeTableIds');
        return subnet;
      }),
      // Imported immutable: the operator's groups keep the rules the operator gave them.
      securityGroups: props.securityGroupIds.map((sg, i) => ec2.SecurityGroup.fromSecurityGroupId(this, `SecurityGroup${i}`, sg, { mutable: false })),
    };
    if (props.endpointRouteTableIds) this.createEndpoints(vpc, props, props.endpointRouteTableIds);
  }

  private createEndpoints(vpc: ec2.IVpc, props: PrivateNetworkProps, routeTableIds: string[]): void {
    const serviceName = (service: string) => Fn.join('', ['com.amazonaws.', Aws.REGION, `.${service}`]);
    for (const service of GATEWAY_ENDPOINTS) {
      this.endpoints.push(
        new ec2.CfnVPCEndpoint(this, `${service}-gateway`, { vpcId: props.vpcId, serviceName: serviceName(service), vpcEndpointType: 'Gateway', routeTableIds }),
      );
    }
    const endpointGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc,
      description: 'IMS: HTTPS from the IMS functions to the interface endpoints',
      allowAllOutbound: false,
    });
    for (const sg of props.securityGroupIds) endpointGroup.addIngressRule(ec2.Peer.securityGroupId(sg), ec2.Port.tcp(443), 'IMS functions');
    for (const service of INTERFACE_ENDPOINTS) {
      this.endpoints.push(
        new ec2.CfnVPCEndpoint(this, `${service}-interface`, {
          vpcId: props.vpcId,
          serviceName: serviceName(service),
          vpcEndpointType: 'Interface',
          subnetIds: endpointSubnets(props),
          securityGroupIds: [endpointGroup.securityGroupId],
          privateDnsEnabled: true,
        }),
      );
    }
  }
}

/** One subnet per Availability Zone, the first given in each; all of them when their zones are not known (one subnet). */
export function endpointSubnets(props: Pick<PrivateNetworkProps, 'subnetIds' | 'subnetAvailabilityZones'>): string[] {
  const zones = props.subnetAvailabilityZones;
  if (!zones) {
    if (props.subnetIds.length > 1) throw new Error('the interface endpoints need the Availability Zone of each subnet (subnetAvailabilityZones)');
    return props.subnetIds;
  }
  const firstInZone = new Map<string, string>();
  props.subnetIds.forEach((id, i) => {
    if (!firstInZone.has(zones[i])) firstInZone.set(zones[i], id);
  });
  return [...firstInZone.values()];
}
