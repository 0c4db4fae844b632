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
    t1,
    t2,
    t2 - t1 AS d2,
    t2 - t1 AS s2,
    level >= 2 AS ok2
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      u[c1[best]] AS t1,
      u[c2[best]] AS t2
    FROM (
      SELECT
        *,
        arrayMax(lv) AS level,
        indexOf(lv, arrayMax(lv)) AS best
      FROM (
        SELECT
          *,
          arrayMap(q2 -> 1 + (
            q2 <> 0
          ), c2) AS lv
        FROM (
          SELECT
            *,
            arrayMap(x -> indexOf(u, x), a1) AS c1,
            arrayMap(
              (s, p) -> CASE
                WHEN p <> 0 AND has(at2, p + 1) AND e2[indexOf(at2, p + 1)] <= s + w
                THEN p + 1
                ELSE 0
              END,
              a1,
              c1
            ) AS c2
          FROM (
            SELECT
              *,
              arraySort(arrayDistinct(e1)) AS a1,
              arrayMap(x -> indexOf(u, x), e2) AS at2
            FROM (
              SELECT
                session_id,
                {p5: Int64} AS w,
                groupArrayIf(t, (
                  kind = {p1: String} AND label = {p2: String}
                )) AS e1,
                groupArrayIf(t, (
                  kind = {p3: String} AND label = {p4: String}
                )) AS e2,
                arrayDistinct(arraySort(groupArray(t))) AS u
              FROM (
                SELECT
                  session_id,
                  toUnixTimestamp64Milli(ts) AS t,
                  kind,
                  label
                FROM bard.conversion_events
                WHERE
                  session_id IN (
                    SELECT
                      session_id
                    FROM entered
                  )
              ) AS matching
              GROUP BY
                session_id
            ) AS layer1
          ) AS layer2
        ) AS layer3
      ) AS layer4
    ) AS chain
  ) AS reached
    USING (session_id)
)
SELECT
  v0,
  v1,
  v2,
  v3,
  v4,
  v4,
  arrayMin(h2) AS lo2,
  intDiv(arrayMax(h2) - lo2, 10) + 1 AS bw2,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo2, bw2), h2)),
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
    countIf(level >= 2) AS v3,
    quantilesExactInclusiveIf(0.5, 0.9)(s2, ok2) AS v4,
    groupArrayIf(s2, level >= 2) AS h2,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 2) AS tc
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
    t1,
    t2,
    t2 - t1 AS d2,
    t2 - t1 AS s2,
    level >= 2 AS ok2
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      u[c1[best]] AS t1,
      u[c2[best]] AS t2
    FROM (
      SELECT
        *,
        arrayMax(lv) AS level,
        indexOf(lv, arrayMax(lv)) AS best
      FROM (
        SELECT
          *,
          arrayMap(q2 -> 1 + (
            q2 <> 0
          ), c2) AS lv
        FROM (
          SELECT
            *,
            arrayMap(x -> indexOf(u, x), a1) AS c1,
            arrayMap(
              (s, p) -> CASE
                WHEN p <> 0 AND has(at2, p + 1) AND e2[indexOf(at2, p + 1)] <= s + w
                THEN p + 1
                ELSE 0
              END,
              a1,
              c1
            ) AS c2
          FROM (
            SELECT
              *,
              arraySort(arrayDistinct(e1)) AS a1,
              arrayMap(x -> indexOf(u, x), e2) AS at2
            FROM (
              SELECT
                session_id,
                {p5: Int64} AS w,
                groupArrayIf(t, (
                  kind = {p1: String} AND label = {p2: String}
                )) AS e1,
                groupArrayIf(t, (
                  kind = {p3: String} AND label = {p4: String}
                )) AS e2,
                arrayDistinct(arraySort(groupArray(t))) AS u
              FROM (
                SELECT
                  session_id,
                  toUnixTimestamp64Milli(ts) AS t,
                  kind,
                  label
                FROM bard.conversion_events
                WHERE
                  session_id IN (
                    SELECT
                      session_id
                    FROM entered
                  )
              ) AS matching
              GROUP BY
                session_id
            ) AS layer1
          ) AS layer2
        ) AS layer3
      ) AS layer4
    ) AS chain
  ) AS reached
    USING (session_id)
)
SELECT
  v0,
  v1,
  v2,
  v3,
  v4,
  v4,
  arrayMin(h2) AS lo2,
  intDiv(arrayMax(h2) - lo2, 10) + 1 AS bw2,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo2, bw2), h2)),
  (
    arrayFilter((i, e) -> e > 0, arrayEnumerate(te), te),
    arrayFilter(e -> e > 0, te),
    arrayFilter((c, e) -> e > 0, tc, te)
  ),
  v8,
  v9,
  v10,
  v11
FROM (
  SELECT
    countIf(level >= 0) AS v0,
    countIf(level < 0) AS v1,
    countIf(level >= 1) AS v2,
    countIf(level >= 2) AS v3,
    quantilesExactInclusiveIf(0.5, 0.9)(s2, ok2) AS v4,
    groupArrayIf(s2, level >= 2) AS h2,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 2) AS tc,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 1)) AS v8,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 0)) AS v9,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 2)) AS v10,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 1)) AS v11
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
    t2,
    t2 - t1 AS d2,
    t2 - t1 AS s2,
    level >= 2 AS ok2,
    arraySlice([t1, t2], 1, greatest(level, 0)) AS reached_at
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      u[c1[best]] AS t1,
      u[c2[best]] AS t2
    FROM (
      SELECT
        *,
        arrayMax(lv) AS level,
        indexOf(lv, arrayMax(lv)) AS best
      FROM (
        SELECT
          *,
          arrayMap(q2 -> 1 + (
            q2 <> 0
          ), c2) AS lv
        FROM (
          SELECT
            *,
            arrayMap(x -> indexOf(u, x), a1) AS c1,
            arrayMap(
              (s, p) -> CASE
                WHEN p <> 0 AND has(at2, p + 1) AND e2[indexOf(at2, p + 1)] <= s + w
                THEN p + 1
                ELSE 0
              END,
              a1,
              c1
            ) AS c2
          FROM (
            SELECT
              *,
              arraySort(arrayDistinct(e1)) AS a1,
              arrayMap(x -> indexOf(u, x), e2) AS at2
            FROM (
              SELECT
                session_id,
                {p8: Int64} AS w,
                groupArrayIf(t, (
                  kind = {p4: String} AND label = {p5: String}
                )) AS e1,
                groupArrayIf(t, (
                  kind = {p6: String} AND label = {p7: String}
                )) AS e2,
                arrayDistinct(arraySort(groupArray(t))) AS u
              FROM (
                SELECT
                  session_id,
                  toUnixTimestamp64Milli(ts) AS t,
                  kind,
                  label
                FROM bard.conversion_events
                WHERE
                  session_id IN (
                    SELECT
                      session_id
                    FROM entered
                  )
              ) AS matching
              GROUP BY
                session_id
            ) AS layer1
          ) AS layer2
        ) AS layer3
      ) AS layer4
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
