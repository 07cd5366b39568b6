-- Creates the Daedalus database and its owner on the PostgreSQL host.
-- Run as a superuser with the password from Vault (deploy/provisioning/vault.md):
--   psql -v ON_ERROR_STOP=1 -v password="$DAEDALUS_DB_PASSWORD" -f postgres.sql
-- Safe to run again: existing objects are kept and the password is reset.
-- Daedalus creates its own tables at start (numbered migrations in sql/).

SELECT 'CREATE ROLE daedalus LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'daedalus')
\gexec

ALTER ROLE daedalus WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
    PASSWORD :'password';

SELECT 'CREATE DATABASE daedalus OWNER daedalus ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'daedalus')
\gexec

REVOKE ALL ON DATABASE daedalus FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE daedalus TO daedalus;

\connect daedalus
-- The service owns its schema; nobody else may create objects in it.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO daedalus;
