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
      toInt16(level) AS lvl,
      c1[best] AS t1,
      c2[best] AS t2,
      c3[best] AS t3
    FROM (
      SELECT
        *,
        arrayMax(lv) AS level,
        indexOf(lv, arrayMax(lv)) AS best
      FROM (
        SELECT
          *,
          arrayMap((q2, q3) -> 1 + (
            q2 <> 0
          ) + (
            q3 <> 0
          ), c2, c3) AS lv
        FROM (
          SELECT
            *,
            arraySort(e1) AS c1,
            arrayMap(
              (s, p) -> CASE WHEN p = 0 THEN 0 ELSE arrayMin(arrayFilter(x -> x > p AND x <= s + w, e2)) END,
              c1,
              c1
            ) AS c2,
            arrayMap(
              (s, p) -> CASE WHEN p = 0 THEN 0 ELSE arrayMin(arrayFilter(x -> x > p AND x <= s + w, e3)) END,
              c1,
              c2
            ) AS c3
          FROM (
            SELECT
              session_id,
              {p12: Int64} AS w,
              groupArrayIf(t, (
                kind = {p6: String} AND label = {p7: String}
              )) AS e1,
              groupArrayIf(t, (
                kind = {p8: String} AND label = {p9: String}
              )) AS e2,
              groupArrayIf(t, (
                kind = {p10: String} AND label = {p11: String}
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
      ) AS layer3
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
  )
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
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 3) AS tc
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
      toInt16(level) AS lvl,
      c1[best] AS t1,
      c2[best] AS t2,
      c3[best] AS t3
    FROM (
      SELECT
        *,
        arrayMax(lv) AS level,
        indexOf(lv, arrayMax(lv)) AS best
      FROM (
        SELECT
          *,
          arrayMap((q2, q3) -> 1 + (
            q2 <> 0
          ) + (
            q3 <> 0
          ), c2, c3) AS lv
        FROM (
          SELECT
            *,
            arraySort(e1) AS c1,
            arrayMap(
              (s, p) -> CASE WHEN p = 0 THEN 0 ELSE arrayMin(arrayFilter(x -> x > p AND x <= s + w, e2)) END,
              c1,
              c1
            ) AS c2,
            arrayMap(
              (s, p) -> CASE WHEN p = 0 THEN 0 ELSE arrayMin(arrayFilter(x -> x > p AND x <= s + w, e3)) END,
              c1,
              c2
            ) AS c3
          FROM (
            SELECT
              session_id,
              {p12: Int64} AS w,
              groupArrayIf(t, (
                kind = {p6: String} AND label = {p7: String}
              )) AS e1,
              groupArrayIf(t, (
                kind = {p8: String} AND label = {p9: String}
              )) AS e2,
              groupArrayIf(t, (
                kind = {p10: String} AND label = {p11: String}
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
      ) AS layer3
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
  v17
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
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 1)) AS v12,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 0)) AS v13,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 2)) AS v14,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 1)) AS v15,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 3)) AS v16,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 2)) AS v17
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
      toInt16(level) AS lvl,
      c1[best] AS t1,
      c2[best] AS t2,
      c3[best] AS t3
    FROM (
      SELECT
        *,
        arrayMax(lv) AS level,
        indexOf(lv, arrayMax(lv)) AS best
      FROM (
        SELECT
          *,
          arrayMap((q2, q3) -> 1 + (
            q2 <> 0
          ) + (
            q3 <> 0
          ), c2, c3) AS lv
        FROM (
          SELECT
            *,
            arraySort(e1) AS c1,
            arrayMap(
              (s, p) -> CASE WHEN p = 0 THEN 0 ELSE arrayMin(arrayFilter(x -> x > p AND x <= s + w, e2)) END,
              c1,
              c1
            ) AS c2,
            arrayMap(
              (s, p) -> CASE WHEN p = 0 THEN 0 ELSE arrayMin(arrayFilter(x -> x > p AND x <= s + w, e3)) END,
              c1,
              c2
            ) AS c3
          FROM (
            SELECT
              session_id,
              {p15: Int64} AS w,
              groupArrayIf(t, (
                kind = {p9: String} AND label = {p10: String}
              )) AS e1,
              groupArrayIf(t, (
                kind = {p11: String} AND label = {p12: String}
              )) AS e2,
              groupArrayIf(t, (
                kind = {p13: String} AND label = {p14: String}
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
          ) AS layer1
        ) AS layer2
      ) AS layer3
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
