#!/usr/bin/env bash
# Compiles the instrumented tests (app/src/androidTest) with the app's sources, without an Android
# SDK: against Robolectric's Android 15 framework jar (Maven Central) and AndroidX Test 1.7 (from
# Google's Maven repository, https://dl.google.com/dl/android/maven2/). It proves they compile; it
# does not run them (that needs an emulator: ./gradlew :app:connectedDebugAndroidTest).
# Not part of run-jvm-tests.sh because it needs Google's repository. Run run-jvm-tests.sh first
# (it generates android-demo/generated and fetches android-all).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[[ -d "$here/generated" ]] || { echo "run android-demo/run-jvm-tests.sh first (generates the bindings)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

aars=(androidx.test:core:1.7.0 androidx.test:runner:1.7.0 androidx.test:rules:1.7.0 androidx.test:monitor:1.8.0
      androidx.test.ext:junit:1.3.0 androidx.test.espresso:espresso-core:3.7.0
      androidx.test.espresso:espresso-idling-resource:3.7.0)
deps=""
for coord in "${aars[@]}"; do
    IFS=: read -r g a v <<<"$coord"
    # Their POMs name their dependencies without <type>aar</type>, so Maven cannot resolve them
    # transitively: each is fetched alone, and the list above is what compiling needs.
    mvn -B -q -ntp -Dstyle.color=never dependency:copy -Dartifact="$g:$a:$v:aar" -DoutputDirectory="$work/aar" \
        -DremoteRepositories=google::default::https://dl.google.com/dl/android/maven2/ >"$work/fetch.log" 2>&1 \
        || { sed 's/\x1b\[0m//g' "$work/fetch.log" >&2; echo "cannot fetch $coord" >&2; exit 1; }
    unzip -q -o -j "$work/aar/$a-$v.aar" classes.jar -d "$work/x" && mv "$work/x/classes.jar" "$work/$a-$v.jar"
    deps+="<dependency><groupId>local</groupId><artifactId>$a</artifactId><version>$v</version><scope>system</scope><systemPath>$work/$a-$v.jar</systemPath></dependency>"
done

cat > pom.xml <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.jobseal.demo</groupId><artifactId>android-tests-compile</artifactId><version>0</version>
  <dependencies>
    <dependency><groupId>org.jetbrains.kotlin</groupId><artifactId>kotlin-stdlib</artifactId><version>2.2.21</version></dependency>
    <dependency><groupId>net.java.dev.jna</groupId><artifactId>jna</artifactId><version>5.17.0</version></dependency>
    <dependency><groupId>org.jetbrains.kotlinx</groupId><artifactId>kotlinx-coroutines-core-jvm</artifactId><version>1.10.2</version></dependency>
    <dependency><groupId>org.robolectric</groupId><artifactId>android-all</artifactId><version>15-robolectric-13954326</version><scope>provided</scope></dependency>
    <dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>4.13.2</version></dependency>
    <dependency><groupId>org.hamcrest</groupId><artifactId>hamcrest-library</artifactId><version>1.3</version></dependency>
    $deps
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.jetbrains.kotlin</groupId><artifactId>kotlin-maven-plugin</artifactId><version>2.2.21</version>
    <executions><execution><id>compile</id><phase>compile</phase><goals><goal>compile</goal></goals>
      <configuration><sourceDirs>
        <sourceDir>$here/generated</sourceDir>
        <sourceDir>$here/core-ui/src/main/kotlin</sourceDir>
        <sourceDir>$here/app/src/main/kotlin</sourceDir>
        <sourceDir>$here/../bindings/android/src/main/kotlin/io/jobseal/android/AndroidClock.kt</sourceDir>
        <sourceDir>$here/../bindings/android/src/main/kotlin/io/jobseal/android/AndroidKeystoreKeyStore.kt</sourceDir>
        <sourceDir>$here/../bindings/android/src/main/kotlin/io/jobseal/android/KeyWrapFormat.kt</sourceDir>
        <sourceDir>$here/../bindings/android/src/main/kotlin/io/jobseal/android/HttpUrlConnectionTransport.kt</sourceDir>
        <sourceDir>$here/app/src/androidTest/kotlin</sourceDir>
      </sourceDirs></configuration></execution></executions>
    <configuration><jvmTarget>17</jvmTarget><args><arg>-nowarn</arg></args></configuration>
  </plugin></plugins></build>
</project>
POM
mvn -B -q -ntp -Dstyle.color=never compile 2>&1 | sed 's/\x1b\[0m//g'
n=$(find target/classes -path '*demo/android/*Test*.class' | wc -l)
echo "== Android demo: instrumented test sources compile ($n test classes; not run)"
