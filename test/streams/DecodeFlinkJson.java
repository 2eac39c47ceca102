import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.formats.common.TimestampFormat;
import org.apache.flink.formats.json.JsonParserRowDataDeserializationSchema;
import org.apache.flink.formats.json.JsonRowDataDeserializationSchema;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.conversion.DataStructureConverter;
import org.apache.flink.table.data.conversion.DataStructureConverters;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.utils.LogicalTypeParser;
import org.apache.flink.table.types.utils.TypeConversions;
import org.apache.flink.types.Row;
import org.apache.flink.util.SimpleUserCodeClassLoader;
import org.apache.flink.util.UserCodeClassLoader;

/**
 * Test helper for test/streams/flink-json.test.ts: decodes JSON records with Flink's own
 * `json` format deserializers, as a Kafka table with 'json.timestamp-format.standard' =
 * 'SQL' does, and prints the values Flink sees. Reads lines `<ROW type>\t<json>` from
 * stdin; prints one line per input: what both deserializers (JsonParser-based, Flink's
 * default, and JsonNode-based) read, or `ERROR <message>`. Run with the source launcher:
 * `java -cp <flink.classpath> DecodeFlinkJson.java`.
 */
public class DecodeFlinkJson {
  public static void main(String[] args) throws Exception {
    ClassLoader loader = DecodeFlinkJson.class.getClassLoader();
    DeserializationSchema.InitializationContext context = new DeserializationSchema.InitializationContext() {
      @Override
      public MetricGroup getMetricGroup() {
        return new UnregisteredMetricsGroup();
      }

      @Override
      public UserCodeClassLoader getUserCodeClassLoader() {
        return SimpleUserCodeClassLoader.create(loader);
      }
    };
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isEmpty()) continue;
      int tab = line.indexOf('\t');
      String typeText = line.substring(0, tab);
      byte[] json = line.substring(tab + 1).getBytes(StandardCharsets.UTF_8);
      try {
        RowType rowType = (RowType) LogicalTypeParser.parse(typeText, loader);
        DataStructureConverter<Object, Object> converter =
            DataStructureConverters.getConverter(TypeConversions.fromLogicalToDataType(rowType));
        converter.open(loader);
        DeserializationSchema<RowData> parser = new JsonParserRowDataDeserializationSchema(
            rowType, InternalTypeInfo.of(rowType), true, false, TimestampFormat.SQL);
        DeserializationSchema<RowData> tree = new JsonRowDataDeserializationSchema(
            rowType, InternalTypeInfo.of(rowType), true, false, TimestampFormat.SQL);
        parser.open(context);
        tree.open(context);
        String a = render(converter.toExternalOrNull(parser.deserialize(json)));
        String b = render(converter.toExternalOrNull(tree.deserialize(json)));
        System.out.println(a.equals(b) ? a : "DIFFERENT parser=" + a + " tree=" + b);
      } catch (Throwable error) {
        Throwable root = error;
        while (root.getCause() != null) root = root.getCause();
        System.out.println("ERROR " + error + " / " + root);
      }
    }
  }

  private static final String NANOS = "%04d-%02d-%02d %02d:%02d:%02d.%09d";

  static String render(Object value) {
    if (value == null) return "null";
    if (value instanceof Row) {
      Row row = (Row) value;
      List<String> fields = new ArrayList<>();
      for (int i = 0; i < row.getArity(); i++) fields.add(render(row.getField(i)));
      return "(" + String.join(", ", fields) + ")";
    }
    if (value instanceof Object[]) {
      List<String> items = new ArrayList<>();
      for (Object item : (Object[]) value) items.add(render(item));
      return "[" + String.join(", ", items) + "]";
    }
    if (value instanceof Map) {
      Map<String, String> sorted = new TreeMap<>();
      for (Map.Entry<?, ?> e : ((Map<?, ?>) value).entrySet()) sorted.put(render(e.getKey()), render(e.getValue()));
      return sorted.toString();
    }
    if (value instanceof byte[]) return "bytes:" + Base64.getEncoder().encodeToString((byte[]) value);
    if (value instanceof String) return "'" + value + "'";
    if (value instanceof BigDecimal) return ((BigDecimal) value).toPlainString();
    if (value instanceof LocalTime) {
      LocalTime t = (LocalTime) value;
      return String.format("%02d:%02d:%02d.%09d", t.getHour(), t.getMinute(), t.getSecond(), t.getNano());
    }
    if (value instanceof LocalDateTime) return dateTime((LocalDateTime) value);
    if (value instanceof Instant) return dateTime(LocalDateTime.ofInstant((Instant) value, ZoneOffset.UTC)) + "Z";
    if (value instanceof LocalDate || value instanceof Number || value instanceof Boolean) return value.toString();
    return value.getClass().getSimpleName() + ":" + value;
  }

  static String dateTime(LocalDateTime t) {
    return String.format(NANOS, t.getYear(), t.getMonthValue(), t.getDayOfMonth(), t.getHour(), t.getMinute(), t.getSecond(), t.getNano());
  }
}
