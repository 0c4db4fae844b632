WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day,
    browser AS bucket
  FROM bard.sessions FINAL
  WHERE
    started_at >= fromUnixTimestamp64Milli({p0: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    day,
    bucket,
    lvl AS level,
    t1,
    t2,
    t3,
    t2 - t1 AS d2,
    t3 - t2 AS d3,
    t2 - t1 AS s2,
    t3 - t1 AS s3,
    level >= 2 AS ok2,
    level >= 3 AS ok3
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      CASE
        WHEN level >= 1
        AND arrayExists(x -> x > t1 AND x < CASE WHEN level >= 3 THEN t3 ELSE 9223372036854775807 END, x1)
        THEN -1
        ELSE toInt16(level)
      END AS lvl,
      t1,
      t2,
      t3
    FROM (
      SELECT
        *,
        r1 + r2 + r3 AS level
      FROM (
        SELECT
          *,
          arrayFilter(x -> x > t1, e2) AS f2,
          r1 AND notEmpty(f2) AS r2,
          arrayMin(f2) AS t2,
          arrayFilter(x -> x > t2, e3) AS f3,
          r2 AND notEmpty(f3) AS r3,
          arrayMin(f3) AS t3
        FROM (
          SELECT
            session_id,
            groupArrayIf(t, (
              kind = {p7: String} AND label = {p8: String}
            )) AS x1,
            countIf((
              kind = {p1: String} AND label = {p2: String}
            )) > 0 AS r1,
            minIf(t, (
              kind = {p1: String} AND label = {p2: String}
            )) AS t1,
            groupArrayIf(t, (
              kind = {p3: String} AND label = {p4: String}
            )) AS e2,
            groupArrayIf(t, (
              kind = {p5: String} AND label = {p6: String}
            )) AS e3
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
                  kind = {p1: String} AND label = {p2: String}
                )
                OR (
                  kind = {p3: String} AND label = {p4: String}
                )
                OR (
                  kind = {p5: String} AND label = {p6: String}
                )
                OR (
                  kind = {p7: String} AND label = {p8: String}
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
        ) AS layer1
      ) AS layer2
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
  v5,
  v5,
  arrayMin(h2) AS lo2,
  intDiv(arrayMax(h2) - lo2, 10) + 1 AS bw2,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo2, bw2), h2)),
  v7,
  v8,
  arrayMin(h3) AS lo3,
  intDiv(arrayMax(h3) - lo3, 10) + 1 AS bw3,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo3, bw3), h3)),
  (
    arrayFilter((i, e) -> e > 0, arrayEnumerate(te), te),
    arrayFilter(e -> e > 0, te),
    arrayFilter((c, e) -> e > 0, tc, te)
  ),
  v12
FROM (
  SELECT
    countIf(level >= 0) AS v0,
    countIf(level < 0) AS v1,
    countIf(level >= 1) AS v2,
    countIf(level >= 2) AS v3,
    countIf(level >= 3) AS v4,
    quantilesExactInclusiveIf(0.5, 0.9)(s2, ok2) AS v5,
    groupArrayIf(s2, level >= 2) AS h2,
    quantilesExactInclusiveIf(0.5, 0.9)(d3, ok3) AS v7,
    quantilesExactInclusiveIf(0.5, 0.9)(s3, ok3) AS v8,
    groupArrayIf(s3, level >= 3) AS h3,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 3) AS tc,
    sumMap(
      [bucket],
      [toUInt64(level >= 0)],
      [toUInt64(level >= 1)],
      [toUInt64(level >= 2)],
      [toUInt64(level >= 3)]
    ) AS v12
  FROM levels
) AS summary;

WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day,
    browser AS bucket
  FROM bard.sessions FINAL
  WHERE
    started_at >= fromUnixTimestamp64Milli({p0: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    day,
    bucket,
    lvl AS level,
    t1,
    t2,
    t3,
    t2 - t1 AS d2,
    t3 - t2 AS d3,
    t2 - t1 AS s2,
    t3 - t1 AS s3,
    level >= 2 AS ok2,
    level >= 3 AS ok3
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      CASE
        WHEN level >= 1
        AND arrayExists(x -> x > t1 AND x < CASE WHEN level >= 3 THEN t3 ELSE 9223372036854775807 END, x1)
        THEN -1
        ELSE toInt16(level)
      END AS lvl,
      t1,
      t2,
      t3
    FROM (
      SELECT
        *,
        r1 + r2 + r3 AS level
      FROM (
        SELECT
          *,
          arrayFilter(x -> x > t1, e2) AS f2,
          r1 AND notEmpty(f2) AS r2,
          arrayMin(f2) AS t2,
          arrayFilter(x -> x > t2, e3) AS f3,
          r2 AND notEmpty(f3) AS r3,
          arrayMin(f3) AS t3
        FROM (
          SELECT
            session_id,
            groupArrayIf(t, (
              kind = {p7: String} AND label = {p8: String}
            )) AS x1,
            countIf((
              kind = {p1: String} AND label = {p2: String}
            )) > 0 AS r1,
            minIf(t, (
              kind = {p1: String} AND label = {p2: String}
            )) AS t1,
            groupArrayIf(t, (
              kind = {p3: String} AND label = {p4: String}
            )) AS e2,
            groupArrayIf(t, (
              kind = {p5: String} AND label = {p6: String}
            )) AS e3
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
                  kind = {p1: String} AND label = {p2: String}
                )
                OR (
                  kind = {p3: String} AND label = {p4: String}
                )
                OR (
                  kind = {p5: String} AND label = {p6: String}
                )
                OR (
                  kind = {p7: String} AND label = {p8: String}
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
        ) AS layer1
      ) AS layer2
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
  v5,
  v5,
  arrayMin(h2) AS lo2,
  intDiv(arrayMax(h2) - lo2, 10) + 1 AS bw2,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo2, bw2), h2)),
  v7,
  v8,
  arrayMin(h3) AS lo3,
  intDiv(arrayMax(h3) - lo3, 10) + 1 AS bw3,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo3, bw3), h3)),
  (
    arrayFilter((i, e) -> e > 0, arrayEnumerate(te), te),
    arrayFilter(e -> e > 0, te),
    arrayFilter((c, e) -> e > 0, tc, te)
  ),
  v12,
  v13,
  v14,
  v15,
  v16,
  v17,
  v18
FROM (
  SELECT
    countIf(level >= 0) AS v0,
    countIf(level < 0) AS v1,
    countIf(level >= 1) AS v2,
    countIf(level >= 2) AS v3,
    countIf(level >= 3) AS v4,
    quantilesExactInclusiveIf(0.5, 0.9)(s2, ok2) AS v5,
    groupArrayIf(s2, level >= 2) AS h2,
    quantilesExactInclusiveIf(0.5, 0.9)(d3, ok3) AS v7,
    quantilesExactInclusiveIf(0.5, 0.9)(s3, ok3) AS v8,
    groupArrayIf(s3, level >= 3) AS h3,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 3) AS tc,
    sumMap(
      [bucket],
      [toUInt64(level >= 0)],
      [toUInt64(level >= 1)],
      [toUInt64(level >= 2)],
      [toUInt64(level >= 3)]
    ) AS v12,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 1)) AS v13,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 0)) AS v14,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 2)) AS v15,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 1)) AS v16,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 3)) AS v17,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 2)) AS v18
  FROM levels
) AS summary;

WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day,
    browser AS bucket
  FROM bard.sessions FINAL
  WHERE
    started_at >= fromUnixTimestamp64Milli({p3: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    day,
    bucket,
    lvl AS level,
    t1,
    t2,
    t3,
    t2 - t1 AS d2,
    t3 - t2 AS d3,
    t2 - t1 AS s2,
    t3 - t1 AS s3,
    level >= 2 AS ok2,
    level >= 3 AS ok3,
    arraySlice([t1, t2, t3], 1, greatest(level, 0)) AS reached_at
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      CASE
        WHEN level >= 1
        AND arrayExists(x -> x > t1 AND x < CASE WHEN level >= 3 THEN t3 ELSE 9223372036854775807 END, x1)
        THEN -1
        ELSE toInt16(level)
      END AS lvl,
      t1,
      t2,
      t3
    FROM (
      SELECT
        *,
        r1 + r2 + r3 AS level
      FROM (
        SELECT
          *,
          arrayFilter(x -> x > t1, e2) AS f2,
          r1 AND notEmpty(f2) AS r2,
          arrayMin(f2) AS t2,
          arrayFilter(x -> x > t2, e3) AS f3,
          r2 AND notEmpty(f3) AS r3,
          arrayMin(f3) AS t3
        FROM (
          SELECT
            session_id,
            groupArrayIf(t, (
              kind = {p10: String} AND label = {p11: String}
            )) AS x1,
            countIf((
              kind = {p4: String} AND label = {p5: String}
            )) > 0 AS r1,
            minIf(t, (
              kind = {p4: String} AND label = {p5: String}
            )) AS t1,
            groupArrayIf(t, (
              kind = {p6: String} AND label = {p7: String}
            )) AS e2,
            groupArrayIf(t, (
              kind = {p8: String} AND label = {p9: String}
            )) AS e3
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
                  kind = {p4: String} AND label = {p5: String}
                )
                OR (
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
        ) AS layer1
      ) AS layer2
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

WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day,
    browser AS bucket
  FROM bard.sessions FINAL
  WHERE
    started_at >= fromUnixTimestamp64Milli({p4: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    day,
    bucket,
    lvl AS level,
    t1,
    t2,
    t3,
    t2 - t1 AS d2,
    t3 - t2 AS d3,
    t2 - t1 AS s2,
    t3 - t1 AS s3,
    level >= 2 AS ok2,
    level >= 3 AS ok3,
    arraySlice([t1, t2, t3], 1, greatest(level, 0)) AS reached_at
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      CASE
        WHEN level >= 1
        AND arrayExists(x -> x > t1 AND x < CASE WHEN level >= 3 THEN t3 ELSE 9223372036854775807 END, x1)
        THEN -1
        ELSE toInt16(level)
      END AS lvl,
      t1,
      t2,
      t3
    FROM (
      SELECT
        *,
        r1 + r2 + r3 AS level
      FROM (
        SELECT
          *,
          arrayFilter(x -> x > t1, e2) AS f2,
          r1 AND notEmpty(f2) AS r2,
          arrayMin(f2) AS t2,
          arrayFilter(x -> x > t2, e3) AS f3,
          r2 AND notEmpty(f3) AS r3,
          arrayMin(f3) AS t3
        FROM (
          SELECT
            session_id,
            groupArrayIf(t, (
              kind = {p11: String} AND label = {p12: String}
            )) AS x1,
            countIf((
              kind = {p5: String} AND label = {p6: String}
            )) > 0 AS r1,
            minIf(t, (
              kind = {p5: String} AND label = {p6: String}
            )) AS t1,
            groupArrayIf(t, (
              kind = {p7: String} AND label = {p8: String}
            )) AS e2,
            groupArrayIf(t, (
              kind = {p9: String} AND label = {p10: String}
            )) AS e3
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
                  kind = {p5: String} AND label = {p6: String}
                )
                OR (
                  kind = {p7: String} AND label = {p8: String}
                )
                OR (
                  kind = {p9: String} AND label = {p10: String}
                )
                OR (
                  kind = {p11: String} AND label = {p12: String}
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
        ) AS layer1
      ) AS layer2
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
  level = {p0: UInt8} - 1 AND NOT has({p1: Array(String)}, bucket)
ORDER BY
  sid NULLS FIRST
LIMIT {p2: UInt32}
OFFSET {p3: UInt32};
