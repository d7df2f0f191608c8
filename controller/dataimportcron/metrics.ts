// SPDX-License-Identifier: Apache-2.0
/**
 * `kubevirt_cdi_dataimportcron_outdated` (CDI `dataimportcron-conditions.go`): 1 for a cron whose
 * `UpToDate` condition is not True, else 0, labelled `namespace`, `cron_name` and `pending`
 * (`"true"` while an outdated cron waits for a default storage class: its template names none and
 * the cluster has no default). CDI's alert `CDIDataImportCronOutdated` fires on
 * `pending="false"`. Pure: the controller's metrics endpoint registers it as a collected gauge.
 */
import { CronConditions, type DataImportCron } from '../../common/api/dataimportcron.js';

/** The gauge's name. */
export const DATAIMPORTCRON_OUTDATED_METRIC = 'kubevirt_cdi_dataimportcron_outdated';
/** The gauge's help text (CDI's). */
export const DATAIMPORTCRON_OUTDATED_HELP = 'DataImportCron has an outdated import';

/** One sample of the gauge. */
export interface OutdatedSample {
  readonly labels: {
    readonly namespace: string;
    readonly cron_name: string;
    readonly pending: string;
  };
  readonly value: 0 | 1;
}

function usesDefaultStorageClass(cron: DataImportCron): boolean {
  const spec = cron.spec?.template?.spec;
  const sc = spec?.storage?.storageClassName ?? spec?.pvc?.storageClassName;
  return sc === undefined || sc === '';
}

/** The gauge's value for one cron. */
export function outdatedSample(
  cron: DataImportCron,
  hasDefaultStorageClass: boolean,
): OutdatedSample {
  const upToDate = cron.status?.conditions?.find((c) => c.type === CronConditions.UpToDate);
  const isUpToDate = upToDate?.status === 'True';
  const pending = !isUpToDate && !hasDefaultStorageClass && usesDefaultStorageClass(cron);
  return {
    labels: {
      namespace: cron.metadata.namespace ?? '',
      cron_name: cron.metadata.name ?? '',
      pending: String(pending),
    },
    value: isUpToDate ? 0 : 1,
  };
}

/** The gauge's samples for every cron. */
export function outdatedSamples(
  crons: readonly DataImportCron[],
  hasDefaultStorageClass: boolean,
): OutdatedSample[] {
  return crons.map((c) => outdatedSample(c, hasDefaultStorageClass));
}
