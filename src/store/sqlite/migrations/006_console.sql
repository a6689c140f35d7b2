-- What the console shows beyond the audit log: the battery's history (for its chart and replacement
-- forecast) and the dated readiness-check reports a property manager keeps.

CREATE TABLE battery_samples (
  lock_id    TEXT    NOT NULL,
  at         INTEGER NOT NULL,          -- ms, the hub clock's reading
  percent    REAL    NOT NULL CHECK (percent >= 0 AND percent <= 100),
  millivolts INTEGER NOT NULL,
  PRIMARY KEY (lock_id, at)
) STRICT;

CREATE TABLE readiness_reports (
  id          TEXT    PRIMARY KEY,      -- "chk-" + 16 hex
  started_at  INTEGER NOT NULL,         -- ms
  passed      INTEGER NOT NULL CHECK (passed IN (0, 1)),
  report      TEXT    NOT NULL          -- the JSON report (src/hub/readiness.ts ReadinessReport)
) STRICT;
CREATE INDEX readiness_reports_recent ON readiness_reports (started_at);
