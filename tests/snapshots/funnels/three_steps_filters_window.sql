WITH entered AS (
  SELECT
    session_id
  FROM bard.sessions FINAL
  WHERE
    app_name IN {p0: Array(String)}
    AND (
      started_at >= fromUnixTimestamp64Milli({p1: Int64}, 'UTC')
      AND started_at < fromUnixTimestamp64Milli({p2: Int64}, 'UTC')
    )
    AND duration_ms >= {p3: UInt64}
    AND (
      error_count > 0
    ) = {p4: Bool}
    AND started_at >= fromUnixTimestamp64Milli({p5: Int64}, 'UTC')
)
SELECT
  (
    SELECT
      COUNT(*)
    FROM entered
  ),
  countIf(r1),
  countIf(r2),
  countIf(r3),
  quantileExactInclusiveIf(0.5)(d2, r2),
  quantileExactInclusiveIf(0.5)(d3, r3)
FROM (
  SELECT
    session_id,
    countIf((
      kind = {p6: String} AND label = {p7: String}
    )) > 0 AS r1,
    minIf(t, (
      kind = {p6: String} AND label = {p7: String}
    )) AS t1,
    groupArrayIf(t, (
      kind = {p8: String} AND label = {p9: String}
    )) AS e2,
    groupArrayIf(t, (
      kind = {p10: String} AND label = {p11: String}
    )) AS e3,
    arrayFilter(x -> x > t1 AND x <= t1 + {p12: Int64}, e2) AS f2,
    r1 AND notEmpty(f2) AS r2,
    arrayMin(f2) AS t2,
    t2 - t1 AS d2,
    arrayFilter(x -> x > t2 AND x <= t1 + {p12: Int64}, e3) AS f3,
    r2 AND notEmpty(f3) AS r3,
    arrayMin(f3) AS t3,
    t3 - t2 AS d3,
    r1 + r2 + r3 AS level
  FROM (
    SELECT
      session_id,
      toUnixTimestamp64Milli(ts) AS t,
      kind,
      label
    FROM bard.conversion_events
    WHERE
      (
        (
          kind = {p6: String} AND label = {p7: String}
        )
        OR (
          kind = {p8: String} AND label = {p9: String}
        )
        OR (
          kind = {p10: String} AND label = {p11: String}
        )
      )
      AND session_id IN (
        SELECT
          session_id
        FROM entered
      )
  ) AS matching
  GROUP BY
    session_id
) AS chain;

WITH entered AS (
  SELECT
    session_id
  FROM bard.sessions FINAL
  WHERE
    app_name IN {p0: Array(String)}
    AND (
      started_at >= fromUnixTimestamp64Milli({p1: Int64}, 'UTC')
      AND started_at < fromUnixTimestamp64Milli({p2: Int64}, 'UTC')
    )
    AND duration_ms >= {p3: UInt64}
    AND (
      error_count > 0
    ) = {p4: Bool}
    AND started_at >= fromUnixTimestamp64Milli({p5: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    level,
    d2,
    d3
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      level,
      d2,
      d3
    FROM (
      SELECT
        session_id,
        countIf((
          kind = {p6: String} AND label = {p7: String}
        )) > 0 AS r1,
        minIf(t, (
          kind = {p6: String} AND label = {p7: String}
        )) AS t1,
        groupArrayIf(t, (
          kind = {p8: String} AND label = {p9: String}
        )) AS e2,
        groupArrayIf(t, (
          kind = {p10: String} AND label = {p11: String}
        )) AS e3,
        arrayFilter(x -> x > t1 AND x <= t1 + {p12: Int64}, e2) AS f2,
        r1 AND notEmpty(f2) AS r2,
        arrayMin(f2) AS t2,
        t2 - t1 AS d2,
        arrayFilter(x -> x > t2 AND x <= t1 + {p12: Int64}, e3) AS f3,
        r2 AND notEmpty(f3) AS r3,
        arrayMin(f3) AS t3,
        t3 - t2 AS d3,
        r1 + r2 + r3 AS level
      FROM (
        SELECT
          session_id,
          toUnixTimestamp64Milli(ts) AS t,
          kind,
          label
        FROM bard.conversion_events
        WHERE
          (
            (
              kind = {p6: String} AND label = {p7: String}
            )
            OR (
              kind = {p8: String} AND label = {p9: String}
            )
            OR (
              kind = {p10: String} AND label = {p11: String}
            )
          )
          AND session_id IN (
            SELECT
              session_id
            FROM entered
          )
      ) AS matching
      GROUP BY
        session_id
    ) AS chain
  ) AS reached
    USING (session_id)
)
SELECT
  COUNT(*),
  countIf(level >= 1),
  countIf(level >= 2),
  countIf(level >= 3),
  quantileExactInclusiveIf(0.5)(d2, level >= 2),
  quantileExactInclusiveIf(0.5)(d3, level >= 3),
  arraySort(x -> toString(x), groupArrayIf(session_id, level >= 1)),
  arraySort(x -> toString(x), groupArrayIf(session_id, level = 0)),
  arraySort(x -> toString(x), groupArrayIf(session_id, level >= 2)),
  arraySort(x -> toString(x), groupArrayIf(session_id, level = 1)),
  arraySort(x -> toString(x), groupArrayIf(session_id, level >= 3)),
  arraySort(x -> toString(x), groupArrayIf(session_id, level = 2))
FROM levels;

WITH entered AS (
  SELECT
    session_id
  FROM bard.sessions FINAL
  WHERE
    app_name IN {p3: Array(String)}
    AND (
      started_at >= fromUnixTimestamp64Milli({p4: Int64}, 'UTC')
      AND started_at < fromUnixTimestamp64Milli({p5: Int64}, 'UTC')
    )
    AND duration_ms >= {p6: UInt64}
    AND (
      error_count > 0
    ) = {p7: Bool}
    AND started_at >= fromUnixTimestamp64Milli({p8: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    level,
    d2,
    d3,
    reached_at
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      level,
      d2,
      d3,
      arraySlice([t1, t2, t3], 1, level) AS reached_at
    FROM (
      SELECT
        session_id,
        countIf((
          kind = {p9: String} AND label = {p10: String}
        )) > 0 AS r1,
        minIf(t, (
          kind = {p9: String} AND label = {p10: String}
        )) AS t1,
        groupArrayIf(t, (
          kind = {p11: String} AND label = {p12: String}
        )) AS e2,
        groupArrayIf(t, (
          kind = {p13: String} AND label = {p14: String}
        )) AS e3,
        arrayFilter(x -> x > t1 AND x <= t1 + {p15: Int64}, e2) AS f2,
        r1 AND notEmpty(f2) AS r2,
        arrayMin(f2) AS t2,
        t2 - t1 AS d2,
        arrayFilter(x -> x > t2 AND x <= t1 + {p15: Int64}, e3) AS f3,
        r2 AND notEmpty(f3) AS r3,
        arrayMin(f3) AS t3,
        t3 - t2 AS d3,
        r1 + r2 + r3 AS level
      FROM (
        SELECT
          session_id,
          toUnixTimestamp64Milli(ts) AS t,
          kind,
          label
        FROM bard.conversion_events
        WHERE
          (
            (
              kind = {p9: String} AND label = {p10: String}
            )
            OR (
              kind = {p11: String} AND label = {p12: String}
            )
            OR (
              kind = {p13: String} AND label = {p14: String}
            )
          )
          AND session_id IN (
            SELECT
              session_id
            FROM entered
          )
      ) AS matching
      GROUP BY
        session_id
    ) AS chain
  ) AS reached
    USING (session_id)
)
SELECT
  session_id,
  level,
  reached_at
FROM levels
WHERE
  level >= {p0: UInt8}
ORDER BY
  sid NULLS FIRST
LIMIT {p1: UInt32}
OFFSET {p2: UInt32};
