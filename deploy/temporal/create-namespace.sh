#!/bin/sh
# One-shot job (admin-tools image), after the Temporal server is healthy and BEFORE any
# DeskClone API or worker starts: the namespace, then the search attributes of CONTRACT.md §3.
# Upserting an attribute the server does not know wedges a workflow task, so the worker must
# never run before this job has completed. Idempotent.
set -eu
NAMESPACE=${DESKCLONE_TEMPORAL_NAMESPACE:-default}
TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-temporal:7233}
RETENTION=${TEMPORAL_RETENTION:-168h}

HOST=$(echo "$TEMPORAL_ADDRESS" | cut -d: -f1)
PORT=$(echo "$TEMPORAL_ADDRESS" | cut -d: -f2)
echo "Waiting for Temporal at $TEMPORAL_ADDRESS..."
nc -z -w 10 "$HOST" "$PORT"
# The IPv4 address, as samples-server does: some resolvers hand the CLI an unusable IPv6 one.
IP=$(getent ahosts "$HOST" | grep STREAM | head -1 | awk '{print $1}')
ADDRESS="$IP:$PORT"

attempt=0
until temporal operator cluster health --address "$ADDRESS"; do
    attempt=$((attempt + 1))
    [ "$attempt" -ge 12 ] && { echo "Temporal did not become healthy"; exit 1; }
    sleep 5
done

temporal operator namespace describe --namespace "$NAMESPACE" --address "$ADDRESS" >/dev/null 2>&1 \
    || temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" \
        --address "$ADDRESS"
echo "Namespace $NAMESPACE exists"

registered=$(temporal operator search-attribute list --namespace "$NAMESPACE" --address "$ADDRESS")
has() { echo "$registered" | grep -qw "$1"; }
created=0

# The six search attributes (core/temporal.py SEARCH_ATTRIBUTES), all Keyword.
has MailboxId || { temporal operator search-attribute create --namespace "$NAMESPACE" --address "$ADDRESS" --name MailboxId --type Keyword; created=1; }
has MailboxAddress || { temporal operator search-attribute create --namespace "$NAMESPACE" --address "$ADDRESS" --name MailboxAddress --type Keyword; created=1; }
has MailboxProvider || { temporal operator search-attribute create --namespace "$NAMESPACE" --address "$ADDRESS" --name MailboxProvider --type Keyword; created=1; }
has MailboxStatus || { temporal operator search-attribute create --namespace "$NAMESPACE" --address "$ADDRESS" --name MailboxStatus --type Keyword; created=1; }
has MailboxPush || { temporal operator search-attribute create --namespace "$NAMESPACE" --address "$ADDRESS" --name MailboxPush --type Keyword; created=1; }
has AgentId || { temporal operator search-attribute create --namespace "$NAMESPACE" --address "$ADDRESS" --name AgentId --type Keyword; created=1; }

# Done only when a visibility query accepts every attribute (the server's caches know them).
for name in MailboxId MailboxAddress MailboxProvider MailboxStatus MailboxPush AgentId; do
    attempt=0
    until temporal workflow list --namespace "$NAMESPACE" --address "$ADDRESS" \
        --query "$name='probe'" --limit 1 >/dev/null; do
        attempt=$((attempt + 1))
        [ "$attempt" -ge 30 ] && { echo "search attribute $name is not usable"; exit 1; }
        sleep 2
    done
done
# Other Temporal services refresh their namespace cache within ~10 s of a change.
[ "$created" = 1 ] && sleep 15
echo "Search attributes MailboxId MailboxAddress MailboxProvider MailboxStatus MailboxPush AgentId are registered"
