WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day
  FROM bard.sessions FINAL
  WHERE
    started_at >= fromUnixTimestamp64Milli({p0: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    day,
    lvl AS level,
    t1
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      t1
    FROM (
      SELECT
        *,
        r1 AS level
      FROM (
        SELECT
          session_id,
          countIf((
            kind = {p1: String} AND label = {p2: String}
          )) > 0 AS r1,
          minIf(t, (
            kind = {p1: String} AND label = {p2: String}
          )) AS t1
        FROM (
          SELECT
            session_id,
            toUnixTimestamp64Milli(ts) AS t,
            kind,
            label
          FROM bard.conversion_events
          WHERE
            (
              kind = {p1: String} AND label = {p2: String}
            )
            AND session_id IN (
              SELECT
                session_id
              FROM entered
            )
        ) AS matching
        GROUP BY
          session_id
      ) AS layer1
    ) AS chain
  ) AS reached
    USING (session_id)
)
SELECT
  v0,
  v1,
  v2,
  (
    arrayFilter((i, e) -> e > 0, arrayEnumerate(te), te),
    arrayFilter(e -> e > 0, te),
    arrayFilter((c, e) -> e > 0, tc, te)
  )
FROM (
  SELECT
    countIf(level >= 0) AS v0,
    countIf(level < 0) AS v1,
    countIf(level >= 1) AS v2,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 1) AS tc
  FROM levels
) AS summary;

WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day
  FROM bard.sessions FINAL
  WHERE
    started_at >= fromUnixTimestamp64Milli({p0: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    day,
    lvl AS level,
    t1
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      t1
    FROM (
      SELECT
        *,
        r1 AS level
      FROM (
        SELECT
          session_id,
          countIf((
            kind = {p1: String} AND label = {p2: String}
          )) > 0 AS r1,
          minIf(t, (
            kind = {p1: String} AND label = {p2: String}
          )) AS t1
        FROM (
          SELECT
            session_id,
            toUnixTimestamp64Milli(ts) AS t,
            kind,
            label
          FROM bard.conversion_events
          WHERE
            (
              kind = {p1: String} AND label = {p2: String}
            )
            AND session_id IN (
              SELECT
                session_id
              FROM entered
            )
        ) AS matching
        GROUP BY
          session_id
      ) AS layer1
    ) AS chain
  ) AS reached
    USING (session_id)
)
SELECT
  v0,
  v1,
  v2,
  (
    arrayFilter((i, e) -> e > 0, arrayEnumerate(te), te),
    arrayFilter(e -> e > 0, te),
    arrayFilter((c, e) -> e > 0, tc, te)
  ),
  v5,
  v6
FROM (
  SELECT
    countIf(level >= 0) AS v0,
    countIf(level < 0) AS v1,
    countIf(level >= 1) AS v2,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 1) AS tc,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 1)) AS v5,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 0)) AS v6
  FROM levels
) AS summary;

WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day
  FROM bard.sessions FINAL
  WHERE
    started_at >= fromUnixTimestamp64Milli({p3: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    day,
    lvl AS level,
    t1,
    arraySlice([t1], 1, greatest(level, 0)) AS reached_at
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      t1
    FROM (
      SELECT
        *,
        r1 AS level
      FROM (
        SELECT
          session_id,
          countIf((
            kind = {p4: String} AND label = {p5: String}
          )) > 0 AS r1,
          minIf(t, (
            kind = {p4: String} AND label = {p5: String}
          )) AS t1
        FROM (
          SELECT
            session_id,
            toUnixTimestamp64Milli(ts) AS t,
            kind,
            label
          FROM bard.conversion_events
          WHERE
            (
              kind = {p4: String} AND label = {p5: String}
            )
            AND session_id IN (
              SELECT
                session_id
              FROM entered
            )
        ) AS matching
        GROUP BY
          session_id
      ) AS layer1
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
