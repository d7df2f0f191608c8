#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reads a Prometheus text exposition on stdin with the Prometheus project's own parser
(python3-prometheus-client) and prints its samples as JSON lines: name, labels, value, and the
family's type. A malformed exposition makes the parser raise, and this script exit non-zero."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            value = sample.value
            print(
                json.dumps(
                    {
                        "name": sample.name,
                        "labels": dict(sample.labels),
                        "value": None if math.isnan(value) else value,
                        "family": family.name,
                        "type": family.type,
                    },
                    sort_keys=True,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
