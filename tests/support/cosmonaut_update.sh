#!/bin/bash
# The update step of the original Cosmonaut agent (2016), step for step, as
# its published behaviour is described in issue 14; written for these tests:
#   1. POST the payload as application/json to the URL the operator gives;
#   2. an answer that contains the word "error" anywhere is an error: stop;
#   3. otherwise delete every double quote, expand backslash escapes with an
#      unquoted `echo -e` (the original answered with a JSON string), and
#      write the result as haproxy.cfg.
# The reload (a `docker exec` into the HAProxy container) is left to the caller.
# Usage: cosmonaut_update.sh URL PAYLOAD OUTPUT_CFG   (PAYLOAD: compact JSON, no spaces)
url=$1
payload=$2
cfg=$3
answer="${cfg}.answer"

rm -f "${answer}" "${cfg}"
curl -s -o ${answer} -H "Content-Type: application/json" -X POST -d ${payload} ${url}

if grep -q error ${answer}; then
    echo "Error occurred:" >&2
    cat ${answer} >&2
    exit 1
fi

text=$(cat ${answer})
unquoted=$(echo "$text" | tr -d '"')
echo -e ${unquoted} > ${cfg}
exit 0
