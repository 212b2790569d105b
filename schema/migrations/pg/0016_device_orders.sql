-- The per-device order state every queued command writes (migration 0016, issue 10 section 4):
-- the ticket counter and the desired state move out of devices into a narrow table of their
-- own. A devices row is wide and has 17 indexes, and desired_state was one of the indexed
-- columns, so each command's counter UPDATE wrote a new wide tuple and an entry in every index
-- (a bulk wipe spent 43-48 us a device in that UPDATE); a device_orders row is under 80 bytes
-- with two indexes (~7 us). The column names stay the same, so the SQL both backends share
-- (store_sqlq.c) reads them unchanged from "devices JOIN device_orders". SQLite keeps them on
-- devices (its 0016 changes nothing).
--
-- fillfactor 85: an update that leaves desired_state as it is (a rekey, a policy push, a
-- second wipe) is HOT when the row's page has room, and 15 % of a page is room for a dozen such
-- updates between two prunes of the page. A wipe changes desired_state, which is indexed, so it
-- is never HOT whatever the fill; 50 was measured too and was no faster for a bulk wipe (1.2-1.3
-- ms of executor time for 180 rows either way), only a third larger.
CREATE TABLE device_orders (
	device_id      TEXT PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
	ticket_counter BIGINT NOT NULL DEFAULT 0,
	desired_state  TEXT NOT NULL DEFAULT 'active'
) WITH (fillfactor = 85);
INSERT INTO device_orders (device_id, ticket_counter, desired_state)
	SELECT id, ticket_counter, desired_state FROM devices;
-- The console's desired= filter and the dashboard's states.
CREATE INDEX device_orders_desired ON device_orders (desired_state);

-- Every device has exactly one orders row, whoever inserts the device (cleave-server, a bench's
-- import, an operator's script): the readers can then join without a LEFT JOIN and defaults.
-- One statement-level trigger per INSERT (a transition table of the new rows), so an import of
-- many devices adds their rows in one INSERT rather than one trigger call per row. ON CONFLICT
-- leaves a row a restore already wrote alone.
CREATE FUNCTION device_orders_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO device_orders (device_id) SELECT id FROM new_devices
		ON CONFLICT (device_id) DO NOTHING;
	RETURN NULL;
END
$$;
CREATE TRIGGER devices_add_orders AFTER INSERT ON devices REFERENCING NEW TABLE AS new_devices
	FOR EACH STATEMENT EXECUTE FUNCTION device_orders_add();

-- devices_corporate was (desired_state, reported_state); what remains on devices is the
-- reported state, which the console filters on (reported=, the "wiped" reason): rebuilt on it.
DROP INDEX devices_corporate;
ALTER TABLE devices DROP COLUMN desired_state, DROP COLUMN ticket_counter;
CREATE INDEX devices_reported ON devices (reported_state);
