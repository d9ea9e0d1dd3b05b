-- A short tour: create, list, read, restore a table. Run with `make demo`.
CREATE SCHEMA in_c_customers;
CREATE TABLE in_c_customers.customers(
    id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    email VARCHAR UNIQUE,
    balance DECIMAL(12,2) DEFAULT 0
);
INSERT INTO in_c_customers.customers
SELECT i, 'Customer ' || i, 'c' || i || '@example.com', i * 10.5 FROM range(1, 101) t(i);

.print '-- 1. take a snapshot'
CALL snapshot_create('in_c_customers.customers', id := 'before_refactor', description := 'Before major refactoring');

.print '-- 2. list snapshots'
SELECT snapshot_id, created_at, type, description, table_count, row_count FROM snapshots();

.print '-- 3. an accident'
DELETE FROM in_c_customers.customers WHERE id > 10;
SELECT count(*) AS rows_left FROM in_c_customers.customers;

.print '-- 4. read the table as it was: by snapshot id, or as of a time'
FROM 'in_c_customers.customers@before_refactor' WHERE id < 4;
SELECT count(*) AS rows_then FROM read_snapshot(now(), 'in_c_customers.customers');

.print '-- 5. restore it as of now (the current state is snapshotted first)'
CALL snapshot_restore(now(), 'in_c_customers.customers');
SELECT count(*) AS rows_back FROM in_c_customers.customers;
SELECT snapshot_id, type FROM snapshots();
