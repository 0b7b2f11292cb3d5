#!/bin/bash
# Q10: import time + max RSS (3 runs each; machine shared, so take the min)
cd "$(dirname "$0")"
PY=venv/bin/python
for stmt in "pass" "import boto3" "import pyarrow" "import pyiceberg.catalog.glue, pyiceberg.table" \
            "import pyiceberg.catalog.glue, pyiceberg.table, pyiceberg.io.pyarrow" ; do
  for i in 1 2 3; do /usr/bin/time -f "%e s %M KB | $stmt" $PY -c "$stmt" ; done
done 2>&1
echo "-- -X importtime top cumulative (pyiceberg.catalog.glue, pyiceberg.table):"
$PY -X importtime -c "import pyiceberg.catalog.glue, pyiceberg.table" 2>&1 | sort -t'|' -k2 -n -r | head -12
