import { Annotations } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import { IConstruct } from 'constructs';

/** The id of the warning, for `Annotations.acknowledgeWarning`. */
export const UNHEARD_TOPIC_WARNING = 'cdk-ecr-pull-through-cache:unheardTopic';

/**
 * Warn at synth when a topic the cache created has no subscription anywhere in the app: alarms and reports sent to
 * it reach nobody. Checked once the whole app is built (a subscription added after the cache counts).
 *
 * @param property the property to set instead, named as the user writes it (`monitoring.alarmActions`)
 */
export function warnWhenUnheard(owner: IConstruct, topic: sns.ITopic, what: string, property: string): void {
  let warned = false; // annotations stay on the construct: a second synthesis of the same app must not repeat it
  owner.node.addValidation({
    validate: () => {
      if (warned) {
        return [];
      }
      const root = topic.node.root;
      const subscribed = root.node.findAll().some(c => c instanceof sns.CfnSubscription && c.topicArn === topic.topicArn);
      if (!subscribed) {
        warned = true;
        Annotations.of(topic).addWarningV2(UNHEARD_TOPIC_WARNING, `${what} go to the SNS topic ${topic.node.path}, which has no `
          + `subscription in this app, so nobody hears them. Set ${property}, or subscribe your on-call to the topic `
          + '(topic.addSubscription), or acknowledge this warning if you subscribe outside CDK.');
      }
      return [];
    },
  });
}
