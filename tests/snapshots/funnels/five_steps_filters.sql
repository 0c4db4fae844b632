WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day
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
    day,
    lvl AS level,
    t1,
    t2,
    t3,
    t4,
    t5,
    t2 - t1 AS d2,
    t3 - t2 AS d3,
    t4 - t3 AS d4,
    t5 - t4 AS d5,
    t2 - t1 AS s2,
    t3 - t1 AS s3,
    t4 - t1 AS s4,
    t5 - t1 AS s5,
    level >= 2 AS ok2,
    level >= 3 AS ok3,
    level >= 4 AS ok4,
    level >= 5 AS ok5
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      t1,
      t2,
      t3,
      t4,
      t5
    FROM (
      SELECT
        *,
        r1 + r2 + r3 + r4 + r5 AS level
      FROM (
        SELECT
          *,
          arrayFilter(x -> x > t1, e2) AS f2,
          r1 AND notEmpty(f2) AS r2,
          arrayMin(f2) AS t2,
          arrayFilter(x -> x > t2, e3) AS f3,
          r2 AND notEmpty(f3) AS r3,
          arrayMin(f3) AS t3,
          arrayFilter(x -> x > t3, e4) AS f4,
          r3 AND notEmpty(f4) AS r4,
          arrayMin(f4) AS t4,
          arrayFilter(x -> x > t4, e5) AS f5,
          r4 AND notEmpty(f5) AS r5,
          arrayMin(f5) AS t5
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
            groupArrayIf(t, (
              kind = {p12: String} AND label = {p13: String}
            )) AS e4,
            groupArrayIf(t, (
              kind = {p14: String} AND label = {p15: String}
            )) AS e5
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
                OR (
                  kind = {p12: String} AND label = {p13: String}
                )
                OR (
                  kind = {p14: String} AND label = {p15: String}
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
  v6,
  v7,
  v7,
  arrayMin(h2) AS lo2,
  intDiv(arrayMax(h2) - lo2, 10) + 1 AS bw2,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo2, bw2), h2)),
  v9,
  v10,
  arrayMin(h3) AS lo3,
  intDiv(arrayMax(h3) - lo3, 10) + 1 AS bw3,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo3, bw3), h3)),
  v12,
  v13,
  arrayMin(h4) AS lo4,
  intDiv(arrayMax(h4) - lo4, 10) + 1 AS bw4,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo4, bw4), h4)),
  v15,
  v16,
  arrayMin(h5) AS lo5,
  intDiv(arrayMax(h5) - lo5, 10) + 1 AS bw5,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo5, bw5), h5)),
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
    countIf(level >= 3) AS v4,
    countIf(level >= 4) AS v5,
    countIf(level >= 5) AS v6,
    quantilesExactInclusiveIf(0.5, 0.9)(s2, ok2) AS v7,
    groupArrayIf(s2, level >= 2) AS h2,
    quantilesExactInclusiveIf(0.5, 0.9)(d3, ok3) AS v9,
    quantilesExactInclusiveIf(0.5, 0.9)(s3, ok3) AS v10,
    groupArrayIf(s3, level >= 3) AS h3,
    quantilesExactInclusiveIf(0.5, 0.9)(d4, ok4) AS v12,
    quantilesExactInclusiveIf(0.5, 0.9)(s4, ok4) AS v13,
    groupArrayIf(s4, level >= 4) AS h4,
    quantilesExactInclusiveIf(0.5, 0.9)(d5, ok5) AS v15,
    quantilesExactInclusiveIf(0.5, 0.9)(s5, ok5) AS v16,
    groupArrayIf(s5, level >= 5) AS h5,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 5) AS tc
  FROM levels
) AS summary;

WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day
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
    day,
    lvl AS level,
    t1,
    t2,
    t3,
    t4,
    t5,
    t2 - t1 AS d2,
    t3 - t2 AS d3,
    t4 - t3 AS d4,
    t5 - t4 AS d5,
    t2 - t1 AS s2,
    t3 - t1 AS s3,
    t4 - t1 AS s4,
    t5 - t1 AS s5,
    level >= 2 AS ok2,
    level >= 3 AS ok3,
    level >= 4 AS ok4,
    level >= 5 AS ok5
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      t1,
      t2,
      t3,
      t4,
      t5
    FROM (
      SELECT
        *,
        r1 + r2 + r3 + r4 + r5 AS level
      FROM (
        SELECT
          *,
          arrayFilter(x -> x > t1, e2) AS f2,
          r1 AND notEmpty(f2) AS r2,
          arrayMin(f2) AS t2,
          arrayFilter(x -> x > t2, e3) AS f3,
          r2 AND notEmpty(f3) AS r3,
          arrayMin(f3) AS t3,
          arrayFilter(x -> x > t3, e4) AS f4,
          r3 AND notEmpty(f4) AS r4,
          arrayMin(f4) AS t4,
          arrayFilter(x -> x > t4, e5) AS f5,
          r4 AND notEmpty(f5) AS r5,
          arrayMin(f5) AS t5
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
            groupArrayIf(t, (
              kind = {p12: String} AND label = {p13: String}
            )) AS e4,
            groupArrayIf(t, (
              kind = {p14: String} AND label = {p15: String}
            )) AS e5
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
                OR (
                  kind = {p12: String} AND label = {p13: String}
                )
                OR (
                  kind = {p14: String} AND label = {p15: String}
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
  v6,
  v7,
  v7,
  arrayMin(h2) AS lo2,
  intDiv(arrayMax(h2) - lo2, 10) + 1 AS bw2,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo2, bw2), h2)),
  v9,
  v10,
  arrayMin(h3) AS lo3,
  intDiv(arrayMax(h3) - lo3, 10) + 1 AS bw3,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo3, bw3), h3)),
  v12,
  v13,
  arrayMin(h4) AS lo4,
  intDiv(arrayMax(h4) - lo4, 10) + 1 AS bw4,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo4, bw4), h4)),
  v15,
  v16,
  arrayMin(h5) AS lo5,
  intDiv(arrayMax(h5) - lo5, 10) + 1 AS bw5,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo5, bw5), h5)),
  (
    arrayFilter((i, e) -> e > 0, arrayEnumerate(te), te),
    arrayFilter(e -> e > 0, te),
    arrayFilter((c, e) -> e > 0, tc, te)
  ),
  v20,
  v21,
  v22,
  v23,
  v24,
  v25,
  v26,
  v27,
  v28,
  v29
FROM (
  SELECT
    countIf(level >= 0) AS v0,
    countIf(level < 0) AS v1,
    countIf(level >= 1) AS v2,
    countIf(level >= 2) AS v3,
    countIf(level >= 3) AS v4,
    countIf(level >= 4) AS v5,
    countIf(level >= 5) AS v6,
    quantilesExactInclusiveIf(0.5, 0.9)(s2, ok2) AS v7,
    groupArrayIf(s2, level >= 2) AS h2,
    quantilesExactInclusiveIf(0.5, 0.9)(d3, ok3) AS v9,
    quantilesExactInclusiveIf(0.5, 0.9)(s3, ok3) AS v10,
    groupArrayIf(s3, level >= 3) AS h3,
    quantilesExactInclusiveIf(0.5, 0.9)(d4, ok4) AS v12,
    quantilesExactInclusiveIf(0.5, 0.9)(s4, ok4) AS v13,
    groupArrayIf(s4, level >= 4) AS h4,
    quantilesExactInclusiveIf(0.5, 0.9)(d5, ok5) AS v15,
    quantilesExactInclusiveIf(0.5, 0.9)(s5, ok5) AS v16,
    groupArrayIf(s5, level >= 5) AS h5,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 5) AS tc,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 1)) AS v20,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 0)) AS v21,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 2)) AS v22,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 1)) AS v23,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 3)) AS v24,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 2)) AS v25,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 4)) AS v26,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 3)) AS v27,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 5)) AS v28,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 4)) AS v29
  FROM levels
) AS summary;

WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day
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
    day,
    lvl AS level,
    t1,
    t2,
    t3,
    t4,
    t5,
    t2 - t1 AS d2,
    t3 - t2 AS d3,
    t4 - t3 AS d4,
    t5 - t4 AS d5,
    t2 - t1 AS s2,
    t3 - t1 AS s3,
    t4 - t1 AS s4,
    t5 - t1 AS s5,
    level >= 2 AS ok2,
    level >= 3 AS ok3,
    level >= 4 AS ok4,
    level >= 5 AS ok5,
    arraySlice([t1, t2, t3, t4, t5], 1, greatest(level, 0)) AS reached_at
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      t1,
      t2,
      t3,
      t4,
      t5
    FROM (
      SELECT
        *,
        r1 + r2 + r3 + r4 + r5 AS level
      FROM (
        SELECT
          *,
          arrayFilter(x -> x > t1, e2) AS f2,
          r1 AND notEmpty(f2) AS r2,
          arrayMin(f2) AS t2,
          arrayFilter(x -> x > t2, e3) AS f3,
          r2 AND notEmpty(f3) AS r3,
          arrayMin(f3) AS t3,
          arrayFilter(x -> x > t3, e4) AS f4,
          r3 AND notEmpty(f4) AS r4,
          arrayMin(f4) AS t4,
          arrayFilter(x -> x > t4, e5) AS f5,
          r4 AND notEmpty(f5) AS r5,
          arrayMin(f5) AS t5
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
            groupArrayIf(t, (
              kind = {p15: String} AND label = {p16: String}
            )) AS e4,
            groupArrayIf(t, (
              kind = {p17: String} AND label = {p18: String}
            )) AS e5
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
                OR (
                  kind = {p15: String} AND label = {p16: String}
                )
                OR (
                  kind = {p17: String} AND label = {p18: String}
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
