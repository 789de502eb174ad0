/**
 * AWS Control Tower's proactive controls at synth: cdk-validator-cfnguard runs them with the
 * cfn-guard binary its package ships (no download, offline). Its findings carry no severity, and
 * CDK counts a finding without one as passing once any other finding of the plugin is
 * acknowledged; each is an error here, so an unacknowledged finding always fails the synth.
 * Findings are acknowledged on their resources (acknowledgeControl in nag.ts).
 */
import type { IPolicyValidationContextBeta1, IPolicyValidationPluginBeta1, PolicyValidationPluginReportBeta1 } from 'aws-cdk-lib';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { CONTROL_TOWER_PLUGIN } from './nag.js';

export class ControlTowerChecks implements IPolicyValidationPluginBeta1 {
  private readonly guard = new CfnGuardValidator();
  readonly name = CONTROL_TOWER_PLUGIN;
  readonly version = this.guard.version;
  readonly ruleIds = this.guard.ruleIds;

  constructor() {
    if (this.guard.name !== CONTROL_TOWER_PLUGIN) throw new Error(`the Control Tower plugin is named ${this.guard.name}, not ${CONTROL_TOWER_PLUGIN}: acknowledgements would not match`);
  }

  validate(context: IPolicyValidationContextBeta1): PolicyValidationPluginReportBeta1 {
    const report = this.guard.validate(context);
    return { ...report, violations: report.violations.map((v) => ({ ...v, severity: v.severity ?? 'error' })) };
  }
}
