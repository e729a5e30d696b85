#!/bin/sh
# The two secrets deploy/helm/values.yaml names, for the namespace $NAMESPACE (default omc).
# Run again to replace them. The values come from deploy/helm/secrets.env (made from
# secrets.example.env, never committed) and from a prompt: never from the command line, where
# they would stay in the shell's history.
set -eu
NAMESPACE="${NAMESPACE:-omc}"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -

# Dagster's storage: the chart reads the password of postgresql.postgresqlUsername from the key
# postgresql-password of global.postgresqlSecretName.
printf 'Password of the PostgreSQL user omc: '
stty -echo; read -r password; stty echo; echo
printf '%s' "$password" | kubectl -n "$NAMESPACE" create secret generic dagster-postgresql-secret \
  --from-file=postgresql-password=/dev/stdin --dry-run=client -o yaml | kubectl apply -f -

# The ledgers' database URL and the keys: envSecrets of the user deployment, and so of every run.
kubectl -n "$NAMESPACE" create secret generic omc-secrets \
  --from-env-file=deploy/helm/secrets.env --dry-run=client -o yaml | kubectl apply -f -
