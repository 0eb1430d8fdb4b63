/**
 * The checks of `WarmUpOptions`, out of the public module (jsii exports no free functions): every error says what was
 * wrong, shows the value and how to fix it.
 */
import { Duration, Token } from 'aws-cdk-lib';
import { UnscannableImages, WarmUpOptions } from './warm-up-options';
import { FindingSeverity } from '../scanning/cache-scanning';

/** `linux/amd64`, `linux/arm/v7`: an OCI platform as `os/architecture[/variant]`. */
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/;
const FIFTEEN_MINUTES_MS = 15 * 60_000;

/** The options, checked: every error says what was wrong, shows the value and how to fix it. */
export function checkWarmUpOptions(where: string, options: WarmUpOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new Error(`${where}: warmUp must be an object of WarmUpOptions, not ${JSON.stringify(options)}.`);
  }
  for (const platform of options.platforms ?? []) {
    if (Token.isUnresolved(platform) || !PLATFORM.test(platform)) {
      throw new Error(`${where}: warmUp.platforms has ${JSON.stringify(platform)}; write each platform as os/architecture[/variant], `
        + 'for example linux/amd64 or linux/arm64, literally.');
    }
  }
  if (options.platforms !== undefined && options.platforms.length === 0) {
    throw new Error(`${where}: warmUp.platforms is empty; name at least one platform (linux/amd64), or leave it unset to warm the platforms the workloads run.`);
  }
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) {
    throw new Error(`${where}: warmUp.concurrency is ${options.concurrency}; use a whole number from 1 to 32.`);
  }
  const budget = (options.retryBudget ?? Duration.minutes(2)).toMilliseconds();
  if (budget < 1000 || budget > 5 * 60_000) {
    throw new Error(`${where}: warmUp.retryBudget is ${options.retryBudget?.toHumanString()}; use 1 second to 5 minutes.`);
  }
  const gate = options.gate;
  if (gate) {
    const timeout = (gate.timeout ?? Duration.minutes(5)).toMilliseconds();
    if (timeout < 1000 || timeout > 10 * 60_000) {
      throw new Error(`${where}: warmUp.gate.timeout is ${gate.timeout?.toHumanString()}; use 1 second to 10 minutes.`);
    }
    if (budget + timeout > FIFTEEN_MINUTES_MS - 2 * 60_000) {
      throw new Error(`${where}: warmUp.retryBudget (${Duration.millis(budget).toHumanString()}) and warmUp.gate.timeout `
        + `(${Duration.millis(timeout).toHumanString()}) add up to more than 13 minutes; the warm-up runs in one Lambda invocation of at most 15. `
        + 'Shorten one of them.');
    }
    for (const cve of gate.allowCves ?? []) {
      if (Token.isUnresolved(cve) || !/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(cve)) {
        throw new Error(`${where}: warmUp.gate.allowCves has ${JSON.stringify(cve)}; write vulnerability ids as the scanner names them, for example CVE-2026-1234.`);
      }
    }
    const levels: string[] = Object.values(UnscannableImages);
    if (gate.unscannable !== undefined && !levels.includes(gate.unscannable)) {
      throw new Error(`${where}: warmUp.gate.unscannable is ${JSON.stringify(gate.unscannable)}; use UnscannableImages.FAIL or UnscannableImages.ALLOW.`);
    }
    const severities: string[] = Object.values(FindingSeverity);
    if (gate.severity !== undefined && !severities.includes(gate.severity)) {
      throw new Error(`${where}: warmUp.gate.severity is ${JSON.stringify(gate.severity)}; use one of ${severities.map(s => `FindingSeverity.${s}`).join(', ')}.`);
    }
  }
}
